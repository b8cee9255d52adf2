# The hub on the official Airflow image (docker-compose.yaml builds it; docs/production.md explains).
#
# The project is installed into the image, not pip-installed at every container start
# (_PIP_ADDITIONAL_REQUIREMENTS): it is not on PyPI, its DAGs and plugins must be in the image anyway,
# and every container then starts in seconds with the same, tested code. It is an editable install
# because the code finds its data beside it (include/xref, include/sql).
FROM apache/airflow:3.3.2

USER root
# gpg, which benefits_hub.pgp drives for PGP-encrypted vendor files (python-gnupg).
RUN apt-get update \
    && apt-get install -y --no-install-recommends gnupg \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
# The sandbox's data (HCM and recordkeeper SQLite files, SFTP root): a volume the sandbox and the
# workers share; created here so that the volume belongs to the airflow user.
RUN install -d -o airflow -g 0 -m 0775 /sandbox
USER airflow

COPY --chown=airflow:0 pyproject.toml README.md /opt/hub/
COPY --chown=airflow:0 plugins /opt/hub/plugins
COPY --chown=airflow:0 include /opt/hub/include
COPY --chown=airflow:0 dags /opt/hub/dags
COPY --chown=airflow:0 docker /opt/hub/docker
# Pinning apache-airflow keeps pip from moving the image's Airflow; the cluster extra brings the
# Celery and Amazon (s3fs) providers, the sandbox extra the vendor stand-ins.
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -e "/opt/hub[cluster,sandbox]"
