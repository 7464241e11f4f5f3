//! What a receiver's answer means for a delivery.

/// The meaning of an HTTP status for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: delivered.
    Delivered,
    /// 5xx, 408, 429: try again after a backoff.
    Retry,
    /// Other statuses (400 included: Alertmanager stored what it could): don't retry.
    Reject,
}

/// Classifies an HTTP status.
pub fn classify(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry,
        _ => Outcome::Reject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_table() {
        assert_eq!(classify(200), Outcome::Delivered);
        assert_eq!(classify(204), Outcome::Delivered);
        assert_eq!(classify(400), Outcome::Reject);
        assert_eq!(classify(404), Outcome::Reject);
        assert_eq!(classify(429), Outcome::Retry);
        assert_eq!(classify(500), Outcome::Retry);
        assert_eq!(classify(502), Outcome::Retry);
        assert_eq!(classify(503), Outcome::Retry);
    }
}
