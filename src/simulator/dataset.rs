//! The simulated data set: tasks generated from a seed, each with a timeline of statuses,
//! and the ground truth of what `list_task` says about any task at any moment.

use crate::row::TaskRow;

/// splitmix64: tiny, fast and stable across versions, so a seed means the same data forever.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A deterministic stream of numbers from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.next_u64() % 1000 < per_mille
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct DatasetSpec {
    /// Seeds every random choice: one seed, one data set.
    pub seed: u64,
    /// Tasks spread uniformly over `[start, end)`.
    pub tasks: u64,
    /// Start of the range the tasks are created in (unix seconds).
    pub start: i64,
    /// End of that range (unix seconds, exclusive).
    pub end: i64,
    /// Extra tasks packed into one hour starting at the given second (a traffic spike).
    pub hot_hour: Option<(i64, u64)>,
    /// Records rendered without a task_id, per million (they must land in the rejects file).
    pub bad_per_million: u64,
}

/// How a task ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Fail(u8),
    /// Never leaves its phase (`stuck_in`): the API keeps reporting it unfinished.
    Stuck(u8),
}

/// One generated task; strings are derived on demand so a million of these stay small.
#[derive(Debug, Clone)]
pub struct SimTask {
    /// Generation order; breaks ties between tasks created in the same second.
    pub idx: u32,
    /// Hash of (seed, data range, idx): ids differ between differently anchored data sets.
    pub id: u64,
    /// Create time (unix seconds).
    pub create: i64,
    /// Seconds spent pending, downloading, running, uploading.
    pub phases: [u32; 4],
    /// How the task ends: success, a failure (index into `FAILURES`) or never.
    pub outcome: Outcome,
    /// Index into `TEMPLATES`: the template's id and name.
    pub template: u8,
    /// Index into `PLACES`: the bucket, region and region type.
    pub place: u8,
    /// Source bitrate in centi-kbit/s (kept integral so every rendering round-trips).
    pub src_centi: u32,
    /// dst/src ratio in per-mille.
    pub ratio_pm: u16,
    /// Drives how this task is rendered (strings, nulls, old time format, ...).
    pub quirks: u64,
    /// Rendered without a task_id: a reject, not part of the truth.
    pub bad: bool,
}

pub const STATUSES: [&str; 4] = ["pending", "downloading", "running", "uploading"];
pub const TEMPLATES: [(&str, &str); 5] = [
    ("tpl-h264-720p", "H.264 720p"),
    ("tpl-h264-1080p", "H.264 1080p"),
    ("tpl-h265-1080p", "H.265 1080p"),
    ("tpl-av1-4k", "AV1 4K"),
    ("tpl-audio", "Audio only"),
];
pub const PLACES: [(&str, &str, &str); 4] = [
    ("media-zjk", "cn-zhangjiakou", "oss"),
    ("media-sh", "cn-shanghai", "oss"),
    ("vod-us", "us-west-2", "s3"),
    ("vod-hk", "ap-east-1", "obs"),
];
pub const FAILURES: [(i64, &str); 4] = [
    (4001, "source download failed"),
    (4002, "unsupported codec"),
    (5001, "encoder crashed"),
    (5003, "upload to bucket failed"),
];

/// Generates the data set, sorted by (create_time, idx).
pub fn generate(spec: &DatasetSpec) -> Vec<SimTask> {
    let mut rng = Rng::new(spec.seed);
    let width = (spec.end - spec.start).max(1) as u64;
    let mut tasks = Vec::with_capacity((spec.tasks + spec.hot_hour.map_or(0, |h| h.1)) as usize);
    let hot = spec.hot_hour.unwrap_or((0, 0));
    for i in 0..(spec.tasks + hot.1) {
        let create =
            if i < spec.tasks { spec.start + rng.range(0, width) as i64 } else { hot.0 + rng.range(0, 3600) as i64 };
        let id = mix(spec.seed ^ mix(spec.start as u64) ^ i);
        tasks.push(make_task(i as u32, id, create, &mut rng, spec.bad_per_million));
    }
    tasks.sort_unstable_by_key(|t| (t.create, t.idx));
    tasks
}

/// `n` more tasks, all created in the one second `at` (numbered from `first_idx`): a
/// second denser than offset paging reaches, when `n` is beyond the API's `max_offset`.
pub fn dense_second(seed: u64, at: i64, n: u64, first_idx: u32) -> Vec<SimTask> {
    let mut rng = Rng::new(seed ^ 0xD15E);
    (0..n as u32).map(|k| make_task(first_idx + k, mix(seed ^ 0xD15E ^ u64::from(k)), at, &mut rng, 0)).collect()
}

fn make_task(idx: u32, id: u64, create: i64, rng: &mut Rng, bad_per_million: u64) -> SimTask {
    let long = rng.chance(50);
    let running = rng.range(30, 1800) as u32 * if long { 12 } else { 1 };
    let phases = [rng.range(1, 90) as u32, rng.range(5, 120) as u32, running, rng.range(5, 60) as u32];
    let roll = rng.range(0, 1000);
    let outcome = if roll < 30 {
        Outcome::Stuck(rng.range(0, 4) as u8)
    } else if roll < 120 {
        Outcome::Fail(rng.range(0, FAILURES.len() as u64) as u8)
    } else {
        Outcome::Success
    };
    SimTask {
        idx,
        id,
        create,
        phases,
        outcome,
        template: rng.range(0, TEMPLATES.len() as u64) as u8,
        place: rng.range(0, PLACES.len() as u64) as u8,
        src_centi: rng.range(50_000, 1_200_000) as u32,
        ratio_pm: rng.range(80, 900) as u16,
        quirks: rng.next_u64(),
        bad: rng.range(0, 1_000_000) < bad_per_million,
    }
}

impl SimTask {
    pub fn task_id(&self) -> String {
        format!("{:016x}", self.id)
    }

    /// The finish time if the task ever finishes.
    pub fn finish(&self) -> Option<i64> {
        match self.outcome {
            Outcome::Stuck(_) => None,
            _ => Some(self.create + self.phases.iter().map(|p| i64::from(*p)).sum::<i64>()),
        }
    }

    /// The status at `now` (the task exists: `now >= create`).
    pub fn status_at(&self, now: i64) -> &'static str {
        if self.finish().is_some_and(|f| now >= f) {
            return if matches!(self.outcome, Outcome::Fail(_)) { "fail" } else { "success" };
        }
        let mut t = self.create;
        for (i, p) in self.phases.iter().enumerate() {
            if let Outcome::Stuck(phase) = self.outcome
                && usize::from(phase) == i
            {
                return STATUSES[i];
            }
            t += i64::from(*p);
            if now < t {
                return STATUSES[i];
            }
        }
        STATUSES[3]
    }

    /// What the API reports about this task at `now`, as the decoder must read it, with
    /// full URLs (presigned query strings included).
    pub fn row_at(&self, now: i64) -> TaskRow {
        let status = self.status_at(now);
        let id = self.task_id();
        let (tpl_id, tpl_name) = TEMPLATES[usize::from(self.template)];
        let (bucket, region, region_type) = PLACES[usize::from(self.place)];
        let fail = match (status, self.outcome) {
            ("fail", Outcome::Fail(k)) => Some(FAILURES[usize::from(k)]),
            _ => None,
        };
        let src = f64::from(self.src_centi) / 100.0;
        let past_download = matches!(status, "running" | "uploading" | "success" | "fail");
        let host = format!("https://{bucket}.{region}.storage.example.com");
        let presign = |path: &str| {
            format!(
                "{host}/{path}?AWSAccessKeyId=AKIDSIMULATED{:04}&Signature=sig{:x}%3D&Expires={}",
                self.idx % 10_000,
                mix(u64::from(self.idx) ^ 7),
                self.create + 7 * 86_400
            )
        };
        TaskRow {
            task_id: id.as_str().into(),
            status: Some(status.into()),
            err_code: Some(fail.map_or(0, |f| f.0)),
            // A download failure names the presigned URL it failed on, as real services do.
            err_message: fail.map(|f| match f.0 {
                4001 => format!("{}: {}", f.1, failed_url(self.idx, &presign(&format!("in/{id}.mp4")))).into(),
                _ => f.1.into(),
            }),
            create_time: self.create,
            finish_time: self.finish().filter(|f| now >= *f),
            src_bitrate: past_download.then_some(src),
            dst_bitrate: (status == "success")
                .then(|| (f64::from(self.src_centi) * f64::from(self.ratio_pm) / 1000.0).round() / 100.0),
            template_id: (!self.quirks.is_multiple_of(97)).then(|| tpl_id.into()),
            template_name: (!self.quirks.is_multiple_of(89)).then(|| tpl_name.into()),
            input: Some(format!("oss://{bucket}/in/{id}.mp4").into()),
            output: Some(format!("oss://{bucket}/out/{id}.mp4").into()),
            objkey: (status == "success").then(|| format!("out/{id}.mp4").into()),
            input_url: Some(presign(&format!("in/{id}.mp4")).into()),
            output_url: (status == "success").then(|| presign(&format!("out/{id}.mp4")).into()),
            bucket: Some(bucket.into()),
            region: Some(region.into()),
            region_type: Some(region_type.into()),
            extra: self.unknown_fields().map(|mut f| {
                f.insert("source".into(), serde_json::Value::String(presign(&format!("in/{id}.mp4"))));
                serde_json::Value::Object(f).to_string()
            }),
        }
    }

    /// Fields the vendor added that the decoder does not know, for one task in five.
    pub fn unknown_fields(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        (self.quirks >> 20).is_multiple_of(5).then(|| {
            let mut fields = serde_json::Map::new();
            fields.insert("priority".into(), serde_json::json!(mix(self.quirks) % 10));
            fields.insert("extra".into(), serde_json::json!({ "node": format!("enc-{}", self.quirks % 16) }));
            fields
        })
    }
}

/// The URL a download failure names, in one of the forms services write credentials in
/// (each secret part holds `SIMSIG`, which no stored text may keep): the AWS one given, and
/// Volcengine TOS, Tencent COS, CDN `auth_key` / `token` / `sign`, an HTML-escaped query, a
/// password in the URL, and a presigned URL percent-encoded inside a proxy's.
fn failed_url(idx: u32, aws: &str) -> String {
    let host = "https://media.example.com/in/v.mp4";
    match idx % 8 {
        0 => format!("{host}?X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Credential=AKSIMSIG&X-Tos-Signature=SIMSIG{idx}"),
        1 => format!("{host}?q-sign-algorithm=sha1&q-signature=SIMSIG{idx}&x-cos-security-token=SIMSIG"),
        2 => format!("{host}?auth_key=1700000000-0-0-SIMSIG{idx}"),
        3 => format!("{host}?token=SIMSIG{idx}&sign=SIMSIG&part=1"),
        4 => format!("<a href=\"{host}?versionId=2&amp;Signature=SIMSIG{idx}&amp;Expires=1\">"),
        5 => format!("https://ingest:SIMSIG{idx}@media.example.com/in/v.mp4"),
        6 => format!("https://proxy.example.com/get?src={}", nested(&format!("{host}?X-Amz-Signature=SIMSIG{idx}"))),
        _ => aws.to_string(),
    }
}

/// `url` percent-encoded as a query value.
fn nested(url: &str) -> String {
    url.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DatasetSpec {
        DatasetSpec {
            seed: 7,
            tasks: 2000,
            start: 1_633_046_400,
            end: 1_633_046_400 + 86_400,
            hot_hour: Some((1_633_050_000, 500)),
            bad_per_million: 0,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let (a, b) = (generate(&spec()), generate(&spec()));
        assert_eq!(a.len(), 2500);
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.task_id() == y.task_id() && x.create == y.create && x.quirks == y.quirks)
        );
        let other = generate(&DatasetSpec { seed: 8, ..spec() });
        assert!(a.iter().zip(&other).any(|(x, y)| x.create != y.create));
    }

    #[test]
    fn statuses_move_forward_to_a_final_state() {
        let tasks = generate(&spec());
        let order = |s: &str| {
            ["pending", "downloading", "running", "uploading", "success", "fail"]
                .iter()
                .position(|x| *x == s)
                .unwrap()
                .min(4)
        };
        for t in tasks.iter().take(300) {
            let mut last = 0;
            for dt in (0..40_000).step_by(97) {
                let o = order(t.status_at(t.create + dt));
                assert!(o >= last, "task {} went backwards", t.task_id());
                last = o;
            }
            let end = t.row_at(t.create + 1_000_000);
            assert_eq!(end.is_final(), !matches!(t.outcome, Outcome::Stuck(_)));
            assert_eq!(end.finish_time.is_some(), end.is_final());
        }
    }

    #[test]
    fn the_hot_hour_holds_its_tasks() {
        let tasks = generate(&spec());
        let hot = tasks.iter().filter(|t| (1_633_050_000..1_633_053_600).contains(&t.create)).count();
        assert!(hot >= 500, "{hot}");
    }
}
