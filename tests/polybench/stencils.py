"""PolyBench/C 4.2.1 stencils: adi, fdtd-2d, heat-3d, jacobi-1d, jacobi-2d,
seidel-2d."""

# Array annotations are strings of the kernel language ("f64[n, m]"), not
# Python expressions; pyflakes would read them as undefined names.
# ruff: noqa: F821

import numpy as np

import polyop

from ._bench import Bench, f64, grid, sizes, zeros


@polyop.kernel
def kernel_adi(tsteps: int, n: int, u: "f64[n, n]", v: "f64[n, n]",
               p: "f64[n, n]", q: "f64[n, n]"):
    DX = 1.0 / n
    DY = 1.0 / n
    DT = 1.0 / tsteps
    B1 = 2.0
    B2 = 1.0
    mul1 = B1 * DT / (DX * DX)
    mul2 = B2 * DT / (DY * DY)

    a = -mul1 / 2.0
    b = 1.0 + mul1
    c = a
    d = -mul2 / 2.0
    e = 1.0 + mul2
    f = d

    for t in range(1, tsteps + 1):  # noqa: B007
        # column sweep
        for i in range(1, n - 1):
            v[0, i] = 1.0
            p[i, 0] = 0.0
            q[i, 0] = v[0, i]
            for j in range(1, n - 1):
                p[i, j] = -c / (a * p[i, j - 1] + b)
                q[i, j] = ((-d * u[j, i - 1] + (1.0 + 2.0 * d) * u[j, i]
                            - f * u[j, i + 1] - a * q[i, j - 1])
                           / (a * p[i, j - 1] + b))
            v[n - 1, i] = 1.0
            # PolyBench: for (j = n-2; j >= 1; j--), here j = n - 1 - jj
            for jj in range(1, n - 1):
                v[n - 1 - jj, i] = p[i, n - 1 - jj] * v[n - jj, i] + q[i, n - 1 - jj]
        # row sweep
        for i in range(1, n - 1):
            u[i, 0] = 1.0
            p[i, 0] = 0.0
            q[i, 0] = u[i, 0]
            for j in range(1, n - 1):
                p[i, j] = -f / (d * p[i, j - 1] + e)
                q[i, j] = ((-a * v[i - 1, j] + (1.0 + 2.0 * a) * v[i, j]
                            - c * v[i + 1, j] - d * q[i, j - 1])
                           / (d * p[i, j - 1] + e))
            u[i, n - 1] = 1.0
            # PolyBench: for (j = n-2; j >= 1; j--), here j = n - 1 - jj
            for jj in range(1, n - 1):
                u[i, n - 1 - jj] = p[i, n - 1 - jj] * u[i, n - jj] + q[i, n - 1 - jj]


def _init_adi(s):
    tsteps, n = s["tsteps"], s["n"]
    i, j = grid(n, n)
    return dict(tsteps=tsteps, n=n, u=f64(i + n - j) / n, v=zeros(n, n),
                p=zeros(n, n), q=zeros(n, n))


@polyop.kernel
def kernel_fdtd_2d(tmax: int, nx: int, ny: int, ex: "f64[nx, ny]",
                   ey: "f64[nx, ny]", hz: "f64[nx, ny]", _fict_: "f64[tmax]"):
    for t in range(tmax):
        for j in range(ny):
            ey[0, j] = _fict_[t]
        for i in range(1, nx):
            for j in range(ny):
                ey[i, j] = ey[i, j] - 0.5 * (hz[i, j] - hz[i - 1, j])
        for i in range(nx):
            for j in range(1, ny):
                ex[i, j] = ex[i, j] - 0.5 * (hz[i, j] - hz[i, j - 1])
        for i in range(nx - 1):
            for j in range(ny - 1):
                hz[i, j] = hz[i, j] - 0.7 * (ex[i, j + 1] - ex[i, j]
                                             + ey[i + 1, j] - ey[i, j])


def _init_fdtd_2d(s):
    tmax, nx, ny = s["tmax"], s["nx"], s["ny"]
    i, j = grid(nx, ny)
    return dict(tmax=tmax, nx=nx, ny=ny, ex=f64(i * (j + 1)) / nx,
                ey=f64(i * (j + 2)) / ny, hz=f64(i * (j + 3)) / nx,
                _fict_=f64(np.arange(tmax)))


@polyop.kernel
def kernel_heat_3d(tsteps: int, n: int, A: "f64[n, n, n]", B: "f64[n, n, n]"):
    for t in range(1, tsteps + 1):  # noqa: B007
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                for k in range(1, n - 1):
                    B[i, j, k] = (0.125 * (A[i + 1, j, k] - 2.0 * A[i, j, k] + A[i - 1, j, k])
                                  + 0.125 * (A[i, j + 1, k] - 2.0 * A[i, j, k] + A[i, j - 1, k])
                                  + 0.125 * (A[i, j, k + 1] - 2.0 * A[i, j, k] + A[i, j, k - 1])
                                  + A[i, j, k])
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                for k in range(1, n - 1):
                    A[i, j, k] = (0.125 * (B[i + 1, j, k] - 2.0 * B[i, j, k] + B[i - 1, j, k])
                                  + 0.125 * (B[i, j + 1, k] - 2.0 * B[i, j, k] + B[i, j - 1, k])
                                  + 0.125 * (B[i, j, k + 1] - 2.0 * B[i, j, k] + B[i, j, k - 1])
                                  + B[i, j, k])


def _init_heat_3d(s):
    tsteps, n = s["tsteps"], s["n"]
    i, j, k = grid(n, n, n)
    A = f64(i + j + (n - k)) * 10 / n
    return dict(tsteps=tsteps, n=n, A=A, B=A.copy())


@polyop.kernel
def kernel_jacobi_1d(tsteps: int, n: int, A: "f64[n]", B: "f64[n]"):
    for t in range(tsteps):  # noqa: B007
        for i in range(1, n - 1):
            B[i] = 0.33333 * (A[i - 1] + A[i] + A[i + 1])
        for i in range(1, n - 1):
            A[i] = 0.33333 * (B[i - 1] + B[i] + B[i + 1])


def _init_jacobi_1d(s):
    tsteps, n = s["tsteps"], s["n"]
    i = np.arange(n)
    return dict(tsteps=tsteps, n=n, A=(f64(i) + 2) / n, B=(f64(i) + 3) / n)


@polyop.kernel
def kernel_jacobi_2d(tsteps: int, n: int, A: "f64[n, n]", B: "f64[n, n]"):
    for t in range(tsteps):  # noqa: B007
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                B[i, j] = 0.2 * (A[i, j] + A[i, j - 1] + A[i, 1 + j] + A[1 + i, j]
                                 + A[i - 1, j])
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                A[i, j] = 0.2 * (B[i, j] + B[i, j - 1] + B[i, 1 + j] + B[1 + i, j]
                                 + B[i - 1, j])


def _init_jacobi_2d(s):
    tsteps, n = s["tsteps"], s["n"]
    i, j = grid(n, n)
    return dict(tsteps=tsteps, n=n, A=(f64(i) * (j + 2) + 2) / n,
                B=(f64(i) * (j + 3) + 3) / n)


@polyop.kernel
def kernel_seidel_2d(tsteps: int, n: int, A: "f64[n, n]"):
    for t in range(tsteps):  # noqa: B007
        for i in range(1, n - 1):
            for j in range(1, n - 1):
                A[i, j] = (A[i - 1, j - 1] + A[i - 1, j] + A[i - 1, j + 1]
                           + A[i, j - 1] + A[i, j] + A[i, j + 1]
                           + A[i + 1, j - 1] + A[i + 1, j] + A[i + 1, j + 1]) / 9.0


def _init_seidel_2d(s):
    tsteps, n = s["tsteps"], s["n"]
    i, j = grid(n, n)
    return dict(tsteps=tsteps, n=n, A=(f64(i) * (j + 2) + 2) / n)


BENCHES = [
    Bench("adi", kernel_adi,
          sizes("tsteps n", (20, 20), (40, 60), (100, 200), (500, 1000)),
          _init_adi, ("u", "v", "p", "q"),
          lambda s: 30.0 * s["tsteps"] * (s["n"] - 2) ** 2),
    Bench("fdtd-2d", kernel_fdtd_2d,
          sizes("tmax nx ny", (20, 20, 30), (40, 60, 80), (100, 200, 240),
                (500, 1000, 1200)),
          _init_fdtd_2d, ("ex", "ey", "hz"),
          lambda s: 11.0 * s["tmax"] * s["nx"] * s["ny"]),
    Bench("heat-3d", kernel_heat_3d,
          sizes("tsteps n", (20, 10), (40, 20), (100, 40), (500, 120)),
          _init_heat_3d, ("A", "B"),
          lambda s: 30.0 * s["tsteps"] * (s["n"] - 2) ** 3),
    Bench("jacobi-1d", kernel_jacobi_1d,
          sizes("tsteps n", (20, 30), (40, 120), (100, 400), (500, 2000)),
          _init_jacobi_1d, ("A", "B"),
          lambda s: 6.0 * s["tsteps"] * (s["n"] - 2)),
    Bench("jacobi-2d", kernel_jacobi_2d,
          sizes("tsteps n", (20, 30), (40, 90), (100, 250), (500, 1300)),
          _init_jacobi_2d, ("A", "B"),
          lambda s: 10.0 * s["tsteps"] * (s["n"] - 2) ** 2),
    Bench("seidel-2d", kernel_seidel_2d,
          sizes("tsteps n", (20, 40), (40, 120), (100, 400), (500, 2000)),
          _init_seidel_2d, ("A",),
          lambda s: 9.0 * s["tsteps"] * (s["n"] - 2) ** 2),
]
