"""AWS adapters: the only modules that touch AWS SDKs (install `taskcore[aws]`)."""
