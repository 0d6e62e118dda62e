from conftest_delegation import llama_server, scripted, smollm2_path

__all__ = ["llama_server", "scripted", "smollm2_path"]
