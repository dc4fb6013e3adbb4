"""Local stand-ins for the AWS services the tasks backend uses, run on this machine only."""
