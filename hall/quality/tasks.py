"""Background jobs of the quality domain."""

from hall.jobs import celery


@celery.task(name="hall.quality.open_cycle_units", bind=True, max_retries=3, default_retry_delay=10)
def open_cycle_units_job(self, cycle_id: int, shard: int = 0, shards: int = 1) -> int:
    """Start the diagnosis processes of one shard of a cycle (subjects with id % shards == shard) in batches;
    a retry resumes where the last run stopped."""
    from hall.quality.cycles import open_units

    try:
        return open_units(cycle_id, shard=shard, shards=shards)
    except Exception as err:
        if self.request.is_eager:
            raise
        raise self.retry(exc=err) from err
