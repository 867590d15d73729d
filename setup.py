from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="bnn-mnist",
    version="0.1.0",
    description="Train Bayesian neural networks on MNIST with mini-batch ADVI (PyMC) and explore their "
    "posteriors and uncertainty in a Panel dashboard",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.12",
    packages=find_packages(include=["core", "core.*", "dashboard", "dashboard.*"]),
    include_package_data=True,
    install_requires=[
        "pymc>=6.4,<7",
        "pytensor>=3.3,<4",
        "jax>=0.10",
        "jaxlib>=0.10",
        "numpy>=2.0",
        "scipy>=1.14",
        "xarray>=2025.1",
        "netCDF4>=1.7",
        "tqdm>=4.66",
        "panel>=1.5,<2",
        "holoviews>=1.20",
        "bokeh>=3.5",
        "param>=2.1",
        "pillow>=10",
        "threadpoolctl>=3",
        "dask[distributed]>=2024.1",
        # the shift suite's foreign digits: UCI optical digits (scikit-learn), DejaVu fonts (matplotlib)
        "scikit-learn>=1.4",
        "matplotlib>=3.8",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-timeout>=2.3", "playwright>=1.45", "psutil>=5.9", "hypothesis>=6.100", "ruff>=0.6"],
        "bench": ["numpyro>=0.15", "psutil>=5.9"],
    },
    entry_points={"console_scripts": ["bnn=core.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.12",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
