# The worker image: the project and its Python dependencies. One image, every role, and the
# `source` service that submits jobs. BASE is any Debian bookworm image: the public
# debian:bookworm-slim by default, or the one `make base-image` makes with debootstrap on
# machines that reach no image registry.
ARG BASE=docker.io/library/debian:bookworm-slim

FROM ${BASE} AS python
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PATH=/opt/mapreduce/bin:$PATH \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
COPY compose/images/extra-ca/ /tmp/extra-ca/
COPY compose/images/trust-extra-ca.sh /tmp/
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && sh /tmp/trust-extra-ca.sh \
 && python3 -m venv /opt/mapreduce

# The runtime dependencies, read from pyproject.toml: the layer that installs them is
# rebuilt only when the list changes, not on every edit of pyproject.toml.
FROM python AS requirements
COPY pyproject.toml /tmp/
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt

FROM python
COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
RUN pip install -q --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mapreduce_kafka ./mapreduce_kafka
COPY shared ./shared
COPY services ./services
COPY pipelines ./pipelines
RUN pip install -q --no-cache-dir --disable-pip-version-check --no-deps . \
 && mapreduce --help > /dev/null
ENTRYPOINT ["mapreduce"]
CMD ["--help"]
