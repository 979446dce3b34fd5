"""polyop_cuda: the GPU backend of polyop (not implemented yet).

Planned (see ``../shared/DESIGN.md``): mapping of schedule bands to CUDA blocks
and threads, shared-memory promotion of tiles, a CUDA C printer, and execution
with pycuda (``pip install "polyop[cuda]"``), or through OpenCL/PoCL on machines
without a GPU. Importing this package works on every machine; using it raises
``NotImplementedError`` until the backend lands.
"""


def build(*args, **kwargs):
    """Compile a schedule for an NVIDIA GPU (not implemented yet)."""
    raise NotImplementedError("polyop_cuda: the GPU backend is not implemented yet")
