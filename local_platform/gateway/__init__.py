"""The local API gateway: API Gateway HTTP API (payload format 2.0) with a JWT authorizer.

`build_app(functions, config, issuer, invoke)` returns the ASGI app. Its parts:

- `app`: the ASGI app (`Gateway`, `build_app`): the order of a request's steps, the JWT
  identity source, reading the body, invoking the function;
- `payload`: the payload 2.0 event (`build_event`, and `http_event` for calling a handler
  directly), claims as strings, bodies as text or base64, request ids and times;
- `routes`: route selection from the manifest and the path decoding before it;
- `responses`: a Lambda result mapped to HTTP, and the gateway's own `{"message":...}` errors;
- `stage`: the stage's throttle (a token bucket) and CORS;
- `docs`: the API reference at `/docs` (Swagger UI), which `make dev` serves.

The Lambda runtime's side of an invocation (the context object, calling the handler) is
`local_platform.lambda_runtime`.
"""

from local_platform.gateway.app import MAX_PAYLOAD_BYTES, Gateway, build_app

__all__ = ["MAX_PAYLOAD_BYTES", "Gateway", "build_app"]
