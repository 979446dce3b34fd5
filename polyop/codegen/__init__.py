"""CPU code generation: polyop loop IR → LLVM IR → optimised native code.

- ``polyop.codegen.llvm``: loop IR → llvmlite ``ir.Module`` (functions, loops);
- ``polyop.codegen.llvm_expr``: expressions, conversions, Python-exact arithmetic;
- ``polyop.codegen.jit``: loop IR → optimised LLVM IR for a target, MCJIT and
  ctypes entry for the host (``polyop.target`` owns the LLVM target machines,
  LLVM's lock and the O3 pipeline);
- ``polyop.codegen.objcode``: assembly and object code of a compiled kernel,
  for any target;
- ``polyop.codegen.parallel``: ``parallel`` loops (outlined chunk functions)
  and the thread count; ``polyop.codegen.threadpool``: the native thread pool
  (LLVM IR, pthreads + futex).

Example::

    >>> from polyop.codegen import compile_function
    >>> from polyop.ir import Function, Block
    >>> compile_function(Function("nop", (), (), Block(())))()
"""

from .jit import CompiledFunction, compile_function, host_target_machine
from .llvm import build_module, symbol_name
from .llvm_expr import CodegenError
from .objcode import CrossCompiled, NativeCode
from .parallel import get_num_threads, set_num_threads, shutdown_threads

__all__ = ["CodegenError", "CompiledFunction", "CrossCompiled", "NativeCode", "build_module",
           "compile_function",
           "get_num_threads", "host_target_machine", "set_num_threads", "shutdown_threads",
           "symbol_name"]
