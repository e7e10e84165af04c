"""The little CUDA the TensorRT backend needs: is there a GPU, pinned host and device buffers, one stream.

Two implementations behind the same methods, both real choices on a Jetson:
- `CudaPython`: NVIDIA's cuda-python (`cuda.bindings.runtime`, or `cuda.cudart` before 12.x): installs from
  wheels; the runtime API uses the device's primary context, made current with cudaSetDevice in the thread
  that runs inference.
- `PyCuda`: pycuda (source-only; JetPack images often have it): a context made with make_context() in the
  thread that runs inference and popped there. Never `import pycuda.autoinit`: it binds the context to the
  importing thread, and inference from another thread then fails (invalid context).

`gpu_count()` asks the driver through ctypes (libcuda), so it needs neither package and never touches
TensorRT: without a GPU, TensorRT segfaults when it deserialises an engine, so the backend asks first.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

import numpy as np

log = logging.getLogger(__name__)


class CudaError(RuntimeError):
    """A CUDA call failed, or no CUDA Python package is installed."""


def _libcuda():
    names = ["libcuda.so.1", "libcuda.so", ctypes.util.find_library("cuda"), "nvcuda.dll"]
    errors = []
    for name in names:
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError as err:
            errors.append(str(err))
    raise OSError("; ".join(errors) or "libcuda not found")


def gpu_count():
    """(number of CUDA devices, reason when 0), from the driver API through ctypes; never raises."""
    try:
        lib = _libcuda()
    except OSError:
        return 0, "no NVIDIA driver (libcuda.so.1 not found)"
    try:
        rc = lib.cuInit(0)
        if rc != 0:
            return 0, "the NVIDIA driver found no usable GPU (cuInit error %d)" % rc
        count = ctypes.c_int(0)
        rc = lib.cuDeviceGetCount(ctypes.byref(count))
        if rc != 0:
            return 0, "cuDeviceGetCount error %d" % rc
        return int(count.value), ("" if count.value else "the NVIDIA driver reports no GPU")
    except Exception as err:  # noqa: BLE001 - a broken driver must not take the process down here
        return 0, "CUDA driver query failed: %s" % err


def driver_device_properties(device=0):
    """(name, (major, minor)) of a GPU from the driver API through ctypes (no CUDA Python package needed)."""
    lib = _libcuda()
    if lib.cuInit(0) != 0:
        raise CudaError("cuInit failed")
    dev = ctypes.c_int(0)
    if lib.cuDeviceGet(ctypes.byref(dev), int(device)) != 0:
        raise CudaError("no CUDA device %d" % device)
    name = ctypes.create_string_buffer(256)
    lib.cuDeviceGetName(name, 256, dev)
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    lib.cuDeviceGetAttribute(ctypes.byref(major), 75, dev)  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
    lib.cuDeviceGetAttribute(ctypes.byref(minor), 76, dev)  # ..._MINOR
    return _text(name.value), (int(major.value), int(minor.value))


def device_index(device):
    """"cuda" -> 0, "cuda:1" / "gpu:1" -> 1, 2 -> 2."""
    if isinstance(device, int):
        return device
    text = str(device)
    return int(text.split(":", 1)[1]) if ":" in text else 0


def _text(value):
    return value if isinstance(value, str) else str(bytes(value), "utf-8", "replace")


class CudaPython:
    """cuda-python's runtime API."""

    name = "cuda-python"

    def __init__(self):
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart  # cuda-python < 12.6 layout
        self.cudart = cudart

    def _ok(self, result, what):
        err = result[0] if isinstance(result, tuple) else result
        if int(err) != 0:
            raise CudaError("%s failed: %s" % (what, _text(self.cudart.cudaGetErrorName(err)[1])))
        values = result[1:] if isinstance(result, tuple) else ()
        return values[0] if len(values) == 1 else values

    def thread_init(self, device):
        self._ok(self.cudart.cudaSetDevice(int(device)), "cudaSetDevice(%d)" % device)
        return None

    def thread_close(self, ctx):
        """Nothing to pop: the primary context stays for other users of this device in the process."""

    def device_properties(self, device):
        prop = self._ok(self.cudart.cudaGetDeviceProperties(int(device)), "cudaGetDeviceProperties")
        return _text(prop.name).rstrip("\x00").strip(), (int(prop.major), int(prop.minor))

    def host_empty(self, shape, dtype):
        """A pinned (page-locked) numpy array, and the handle to free it."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        ptr = int(self._ok(self.cudart.cudaMallocHost(nbytes), "cudaMallocHost(%d)" % nbytes))
        buf = (ctypes.c_byte * nbytes).from_address(ptr)
        return np.frombuffer(buf, dtype=dtype).reshape(shape), ptr

    def host_free(self, handle):
        self._ok(self.cudart.cudaFreeHost(handle), "cudaFreeHost")

    def malloc(self, nbytes):
        return int(self._ok(self.cudart.cudaMalloc(int(nbytes)), "cudaMalloc(%d)" % nbytes))

    def free(self, ptr):
        self._ok(self.cudart.cudaFree(ptr), "cudaFree")

    def stream_create(self):
        return self._ok(self.cudart.cudaStreamCreate(), "cudaStreamCreate")

    def stream_handle(self, stream):
        return int(stream)

    def stream_destroy(self, stream):
        self._ok(self.cudart.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def htod_async(self, dptr, host, stream):
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._ok(self.cudart.cudaMemcpyAsync(dptr, host.ctypes.data, host.nbytes, kind, stream), "cudaMemcpyAsync H2D")

    def dtoh_async(self, host, dptr, stream):
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._ok(self.cudart.cudaMemcpyAsync(host.ctypes.data, dptr, host.nbytes, kind, stream), "cudaMemcpyAsync D2H")

    def sync(self, stream):
        self._ok(self.cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")


class PyCuda:
    """pycuda's driver API, with a context owned by the thread that calls thread_init."""

    name = "pycuda"

    def __init__(self):
        import pycuda.driver as cuda

        self.cuda = cuda
        self._allocs = {}

    def thread_init(self, device):
        self.cuda.init()
        return self.cuda.Device(int(device)).make_context()  # current in this thread from now on

    def thread_close(self, ctx):
        if ctx is not None:
            ctx.pop()
            ctx.detach()

    def device_properties(self, device):
        dev = self.cuda.Device(int(device))
        return dev.name(), tuple(int(v) for v in dev.compute_capability())

    def host_empty(self, shape, dtype):
        arr = self.cuda.pagelocked_empty(tuple(shape), np.dtype(dtype))
        return arr, arr

    def host_free(self, handle):
        base = getattr(handle, "base", None)
        if base is not None and hasattr(base, "free"):
            base.free()

    def malloc(self, nbytes):
        alloc = self.cuda.mem_alloc(int(nbytes))
        self._allocs[int(alloc)] = alloc
        return int(alloc)

    def free(self, ptr):
        alloc = self._allocs.pop(ptr, None)
        if alloc is not None:
            alloc.free()

    def stream_create(self):
        return self.cuda.Stream()

    def stream_handle(self, stream):
        return int(stream.handle)

    def stream_destroy(self, stream):
        """pycuda streams are freed with the object."""

    def htod_async(self, dptr, host, stream):
        self.cuda.memcpy_htod_async(dptr, host, stream)

    def dtoh_async(self, host, dptr, stream):
        self.cuda.memcpy_dtoh_async(host, dptr, stream)

    def sync(self, stream):
        stream.synchronize()


APIS = {"cuda-python": CudaPython, "pycuda": PyCuda}


def choose_api(prefer=None):
    """A CUDA API object: `prefer` ("cuda-python" / "pycuda"), else cuda-python when installed, else pycuda."""
    order = [prefer] if prefer else ["cuda-python", "pycuda"]
    errors = []
    for name in order:
        if name not in APIS:
            raise ValueError("unknown CUDA API %r (choose from %s)" % (name, ", ".join(APIS)))
        try:
            return APIS[name]()
        except ImportError as err:
            errors.append("%s: %s" % (name, err))
    raise CudaError("the TensorRT backend needs cuda-python (pip install cuda-python) or pycuda (JetPack: "
                    "pip install pycuda): %s" % "; ".join(errors))
