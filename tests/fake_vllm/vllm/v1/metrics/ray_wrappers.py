"""The stat logger Ray's engine stage hands the engine when `log_engine_metrics` is on."""


class RayPrometheusStatLogger:
    pass
