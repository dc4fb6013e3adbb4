"""The stack's CrossGuard policy pack (`rules.py`), and a runner over mocked graphs."""
