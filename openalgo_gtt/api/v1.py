"""OpenAlgo's REST dialect: POST /api/v1/<name> with a JSON body carrying `apikey`."""
from __future__ import annotations

from flask import current_app
from flask_restx import Namespace, Resource, fields

from openalgo_gtt.api.auth import caller_from_body

ns = Namespace("v1", path="/v1", description="OpenAlgo-compatible endpoints (JSON body with apikey)")

error_model = ns.model(
    "Error",
    {
        "status": fields.String(example="error"),
        "message": fields.String(example="Invalid openalgo apikey"),
        "request_id": fields.String,
    },
)
apikey_model = ns.model("ApiKeyOnly", {"apikey": fields.String(required=True)})
ping_model = ns.model(
    "Ping",
    {
        "status": fields.String(example="success"),
        "data": fields.Raw(example={"broker": "sandbox", "message": "pong"}),
        "request_id": fields.String,
    },
)


@ns.route("/ping")
class Ping(Resource):
    @ns.expect(apikey_model, validate=False)
    @ns.response(200, "The key is valid", ping_model)
    @ns.response(403, "Invalid openalgo apikey", error_model)
    def post(self):
        """Check an API key and see which broker the gateway drives."""
        caller_from_body()
        broker = current_app.extensions["openalgo_gtt"].settings.broker
        return {"status": "success", "data": {"broker": broker, "message": "pong"}}
