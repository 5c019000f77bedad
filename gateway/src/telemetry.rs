//! Metric names, their help texts, and the Prometheus recorder.

use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

use crate::registry::{METRIC_EVENTS_STORED, METRIC_GROUPS_COMPLETED, METRIC_VALIDATION_FAILURES};
use crate::store::{METRIC_FLUSH_BATCH, METRIC_FLUSH_SECONDS};

/// HTTP requests by method, route and status.
pub const HTTP_REQUESTS: &str = "epr_http_requests_total";
/// HTTP request latency by method and route.
pub const HTTP_DURATION: &str = "epr_http_request_duration_seconds";
/// Last sequence number of the durable log (its length).
pub const LOG_LENGTH: &str = "epr_log_length";
/// Bytes the store occupies on disk.
pub const STORE_BYTES: &str = "epr_store_size_bytes";

/// Latency buckets, in seconds: 50 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];
/// Batch-size buckets.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

/// Installs the process-wide Prometheus recorder and describes every metric.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets(SECONDS_BUCKETS)?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(METRIC_FLUSH_BATCH.into()),
            BATCH_BUCKETS,
        )?
        .install_recorder()?;
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests by method, route and status");
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency"
    );
    metrics::describe_counter!(METRIC_EVENTS_STORED, "Events stored");
    metrics::describe_counter!(
        METRIC_VALIDATION_FAILURES,
        "Events refused because the payload did not match the receiver's schema"
    );
    metrics::describe_counter!(METRIC_GROUPS_COMPLETED, "Group-complete messages produced");
    metrics::describe_histogram!(
        METRIC_FLUSH_SECONDS,
        metrics::Unit::Seconds,
        "Duration of one flush to disk"
    );
    metrics::describe_histogram!(
        METRIC_FLUSH_BATCH,
        "Writes made durable by one flush (group commit)"
    );
    metrics::describe_gauge!(LOG_LENGTH, "Last sequence number of the durable log");
    metrics::describe_gauge!(
        STORE_BYTES,
        metrics::Unit::Bytes,
        "Bytes the store occupies on disk"
    );
    // present from the start, so that an alert on it sees 0, not nothing
    metrics::gauge!(crate::bus::log_stream::METRIC_READERS_STUCK).set(0.0);
    Ok(handle)
}
