"""OpenAI's audio API (`/v1/audio/*`, `/v1/models`) over the v1 jobs: routes, the model
catalogue, response shapes, waiting and streaming, and errors in OpenAI's shape."""

from starlette.routing import Route

from . import routes
from .errors import http_error

ROUTES = [
    Route("/v1/audio/transcriptions", routes.transcriptions, methods=["POST"]),
    Route("/v1/audio/translations", routes.translations, methods=["POST"]),
    Route("/v1/models", routes.list_models, methods=["GET"]),
    Route("/v1/models/{model_id:path}", routes.get_model, methods=["GET"]),
]

__all__ = ["ROUTES", "http_error"]
