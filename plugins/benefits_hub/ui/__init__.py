"""The Activity Monitor: a page in the Airflow UI listing every integration run in the vendors' words.

``activity`` (rows, statuses, filters, CSV), ``render`` (HTML) and ``files`` (masked downloads) are pure;
``records`` reads Airflow's metadata DB; ``app`` is the FastAPI app the plugin mounts under the
api-server; ``urls`` is the URL contract other modules (notifications) link to.
"""
