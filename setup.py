"""dcrnn_tf: DCRNN multi-task ranking on TensorFlow and Keras 2."""

import setuptools

setuptools.setup(
    name="dcrnn_tf",
    version="0.1.0",
    description=("DCRNN: RNN feature crossing with partial parameter sharing for "
                 "multi-task (click → conversion) ranking, on TensorFlow and Keras 2."),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["dcrnn_tf", "dcrnn_tf.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow==2.21.0",
        "tf-keras==2.21.0",
        "tensorflow-recommenders==0.7.7",
        "tensorflow-serving-api==2.21.0",
        "grpcio",
        "protobuf",
        "numpy",
        "pandas",
        "absl-py",
        "pyyaml",
    ],
    extras_require={"benchmark": ["matplotlib"], "test": ["pytest", "matplotlib"]},
)
