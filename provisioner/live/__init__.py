"""Live updates of workspace pages: the `live` process and the publisher the others call.

- `publisher.publish_status(redis_client, tenant_id, run_id, version, document)`: call it
  after each committed transition (API, workers, CLI); sync, no Flask.
- `python -m provisioner.live`: the process that serves `GET …/tenants/<id>/events`
  (`server`), fed by one Redis subscription (`hub`), tickets checked by `auth`, frames built
  by `frames`, the one SQL read in `state`. Wire format and Redis names: `protocol`.
- `feed.Feed`: the web process's own subscription to the same channels, which keeps its
  status memory true (`api.not_modified`).
"""
