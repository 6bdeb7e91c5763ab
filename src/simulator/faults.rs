//! Injected transient faults: the HTTP and API failures a robust client must ride out.

use std::time::Duration;

/// Which faults, how often.
#[derive(Debug, Clone)]
pub struct FaultSpec {
    /// Share of requests answered with a fault, per mille.
    pub per_mille: u64,
    /// The `Retry-After` seconds sent with 429.
    pub retry_after_s: u64,
    /// How long a "slow" response waits before answering.
    pub slow: Duration,
}

impl FaultSpec {
    pub fn none() -> FaultSpec {
        FaultSpec { per_mille: 0, retry_after_s: 1, slow: Duration::from_millis(200) }
    }

    /// `per_mille` faulty responses with short waits, for tests.
    pub fn quick(per_mille: u64) -> FaultSpec {
        FaultSpec { per_mille, retry_after_s: 0, slow: Duration::from_millis(30) }
    }
}

/// One kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with an HTML error page.
    Html500,
    /// HTTP 503, empty body.
    Unavailable,
    /// HTTP 429 with `Retry-After`.
    TooMany,
    /// `code: 1000`, internal error.
    Code1000,
    /// `code: 1005`, operation fail.
    Code1005,
    /// HTTP 200 whose body stops halfway (a proxy cut it).
    Truncated,
    /// The connection drops in the middle of the body.
    Reset,
    /// A correct answer, late.
    Slow,
}

const KINDS: [Fault; 8] = [
    Fault::Html500,
    Fault::Unavailable,
    Fault::TooMany,
    Fault::Code1000,
    Fault::Code1005,
    Fault::Truncated,
    Fault::Reset,
    Fault::Slow,
];

/// The fault (if any) for request number `n`; deterministic in `seed` and `n`.
pub fn pick(spec: &FaultSpec, seed: u64, n: u64) -> Option<Fault> {
    let h = super::dataset::mix(seed ^ n.wrapping_mul(0x2545_F491_4F6C_DD1D));
    (h % 1000 < spec.per_mille).then(|| KINDS[((h >> 20) % KINDS.len() as u64) as usize])
}
