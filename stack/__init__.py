"""The one description of the stack, read twice: by the Pulumi program (`infra/`, to build it on
AWS) and by the local platform (`local_platform/`, to run it on a laptop).

- `manifest.py`: every function, its triggers, environment and permissions, and the workflows;
- `config.py`: a stack's settings (`StackConfig`), from `Pulumi.yaml` and `Pulumi.<stack>.yaml`;
- `workflows.py`: the state machines' definitions (Amazon States Language, built in Python).

Pure data and functions: nothing here imports Pulumi, boto3 or either reader, so the Lambda
code archive ships `manifest.py` (the HTTP handler registers its routes from it) unchanged.
"""
