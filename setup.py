from setuptools import find_packages, setup


with open("README.rst", encoding="utf-8") as f:
    README = f.read()

setup(
    name="stepfunction",
    version="1.0.0.dev0",
    description="A Kinto plugin that answers AWS Step Functions manual steps from records",
    long_description=README,
    long_description_content_type="text/x-rst",
    license="Apache License (2.0)",
    classifiers=[
        "Framework :: Pyramid",
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP",
    ],
    keywords="kinto aws stepfunctions manual-step approval",
    # stepfunction/static holds the dashboard's files and no Python: list it, or setuptools
    # warns that it would ignore it.
    packages=[*find_packages(exclude=["tests", "tests.*"]), "stepfunction.static"],
    include_package_data=True,
    package_data={"stepfunction.static": ["*"]},
    zip_safe=False,
    python_requires=">=3.11",
    install_requires=[
        "kinto>=26.5,<27",
        "pyramid>=2.0",
        "colander>=2.0",
        "boto3>=1.35",
        "transaction",
        "pyramid_mailer",
        "itsdangerous>=2",
        "email-validator>=2",
        # Standard Webhooks signatures (the webhooks' "standard" scheme).
        "standardwebhooks>=1.1,<2",
    ],
    extras_require={
        "postgresql": ["kinto[postgresql]>=26.5,<27"],
        # The local Step Functions used by the tests and `make serve`. The emulator patches
        # moto's internals, so it is pinned to the one version it was written against.
        "testing": [
            "moto[server,stepfunctions,sqs]==5.2.5",
            "webtest",
            "aiosmtpd",
            "playwright",
            "pytest",
            # A hung test fails with every thread's stack instead of eating CI's time.
            "pytest-timeout",
            "schemathesis",
            "ruff",
            "kinto[postgresql]>=26.5,<27",
            # An embedded PostgreSQL for the tests where no server answers (its API and its
            # handling of root are used as they are in 0.1).
            "pgserver>=0.1.4,<0.2",
        ],
    },
    entry_points={
        "console_scripts": [
            "stepfunction-worker = stepfunction.worker.cli:main",
        ],
    },
)
