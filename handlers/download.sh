#!/bin/sh
# The download function's handler: AWS's Lambda Web Adapter (its layer's /opt/bootstrap, the
# function's AWS_LAMBDA_EXEC_WRAPPER) runs this script, waits until GET /health answers on
# $AWS_LWA_PORT, then forwards each invocation to it and streams the answer back. The local
# platform runs the same script on a loopback port. The dependency layer is /opt/python.
cd "${LAMBDA_TASK_ROOT:-$(dirname "$0")/..}" || exit 1
PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}/opt/python:${LAMBDA_RUNTIME_DIR:-}" exec python -m uvicorn \
    handlers.download:app \
    --host 127.0.0.1 --port "${AWS_LWA_PORT:-8080}" \
    --no-access-log --no-server-header --log-level warning --timeout-graceful-shutdown 2
