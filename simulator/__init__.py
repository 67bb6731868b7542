"""An OpenAI-compatible LLM simulator on loopback: a test double for drafting, the demo and benchmarks."""

from .server import SimulatorConfig, SimulatorServer, serve_forever

__all__ = ["SimulatorConfig", "SimulatorServer", "serve_forever"]
