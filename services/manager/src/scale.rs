//! Scaling: to a count (the API), and by load (the autoscaler). The load is read from the
//! replicas' own `/metrics` (request counter and latency histogram), summed over replicas and
//! differenced over a window.

use std::{collections::HashMap, time::Duration};

use anyhow::bail;
use tokio::time::Instant;

use crate::{
    config::Autoscale,
    state::{unix_ms, LoadFigures},
    supervisor::Manager,
};

/// Routes that are not shoppers' requests (probes, the manager's own scrapes and streams).
const NOT_LOAD: [&str; 4] = ["/metrics", "/healthz", "/readyz", "/heartbeat"];

/// One replica's counters at one instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub requests: f64,
    /// of which answered 5xx
    pub errors: f64,
    /// cumulative histogram: upper bound (s) → count, summed over routes
    pub buckets: Vec<(f64, f64)>,
}

fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let end = line[start..].find('"')? + start;
    Some(&line[start..end])
}

/// Reads the shop's Prometheus text: `shop_http_requests_total` and
/// `shop_http_request_duration_seconds_bucket`, without the probe routes.
pub fn parse_metrics(text: &str) -> Sample {
    let mut s = Sample::default();
    let mut buckets: HashMap<String, f64> = HashMap::new();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(v) = value.parse::<f64>() else { continue };
        let route = label(series, "route").unwrap_or("");
        if NOT_LOAD.contains(&route) {
            continue;
        }
        if series.starts_with("shop_http_requests_total{") {
            s.requests += v;
            if label(series, "status").is_some_and(|st| st.starts_with('5')) {
                s.errors += v;
            }
        } else if series.starts_with("shop_http_request_duration_seconds_bucket{") {
            if let Some(le) = label(series, "le") {
                *buckets.entry(le.to_string()).or_default() += v;
            }
        }
    }
    let mut b: Vec<(f64, f64)> = buckets
        .into_iter()
        .map(|(le, n)| (if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::INFINITY) }, n))
        .collect();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    s.buckets = b;
    s
}

/// The p99 (ms) of the requests between two samples, from the histogram's deltas (the bucket's
/// upper bound: a conservative estimate). None without requests.
pub fn p99_between(before: &Sample, after: &Sample) -> Option<f64> {
    let delta: Vec<(f64, f64)> = after
        .buckets
        .iter()
        .map(|(le, n)| {
            let b = before.buckets.iter().find(|(l, _)| l == le).map(|(_, n)| *n).unwrap_or(0.0);
            (*le, (n - b).max(0.0))
        })
        .collect();
    let total = delta.last().map(|(_, n)| *n).unwrap_or(0.0);
    if total <= 0.0 {
        return None;
    }
    let want = total * 0.99;
    delta.iter().find(|(_, n)| *n >= want).map(|(le, _)| if le.is_finite() { le * 1000.0 } else { 10_000.0 })
}

/// The hysteresis: how many windows in a row each condition held.
#[derive(Debug, Default)]
pub struct Streaks {
    pub up: u32,
    pub down: u32,
    pub last_change: Option<Instant>,
}

#[derive(Debug, PartialEq)]
pub enum Decision {
    Stay,
    To(usize, String),
}

/// Scale out when the rate per replica or the p99 is over its bound for `windows` windows in a
/// row; in by one when one replica fewer would each stay under the low bound for three times as
/// many windows; never inside the cooldown, never outside [min, max].
pub fn decide(a: &Autoscale, n: usize, load: &LoadFigures, s: &mut Streaks, now: Instant) -> Decision {
    let per = if n > 0 { load.rps / n as f64 } else { load.rps };
    let p99_high = load.p99_ms.is_some_and(|p| p > a.up_p99.as_millis() as f64) && load.rps >= 5.0;
    let up = n < a.max && (per > a.up_rps || p99_high);
    let down = n > a.min && n > 1 && load.rps / (n - 1) as f64 <= a.down_rps && !p99_high;
    s.up = if up { s.up + 1 } else { 0 };
    s.down = if down { s.down + 1 } else { 0 };
    if n < a.min {
        return Decision::To(a.min, format!("{n} replicas is below the minimum {}", a.min));
    }
    if n > a.max {
        return Decision::To(a.max, format!("{n} replicas is above the maximum {}", a.max));
    }
    if s.last_change.is_some_and(|t| now.saturating_duration_since(t) < a.cooldown) {
        return Decision::Stay;
    }
    let p99 = load.p99_ms.map(|p| format!("{p:.0} ms")).unwrap_or_else(|| "n/a".into());
    if s.up >= a.windows {
        // enough replicas for the measured rate at the middle of the band, at least one more
        let mid = (a.up_rps + a.down_rps) / 2.0;
        let want = ((load.rps / mid).ceil() as usize).clamp(n + 1, a.max);
        return Decision::To(
            want,
            format!(
                "{:.0} rps = {per:.0} per replica (bound {:.0}), p99 {p99} (bound {} ms), {} windows in a row",
                load.rps,
                a.up_rps,
                a.up_p99.as_millis(),
                s.up
            ),
        );
    }
    if s.down >= a.windows * 3 {
        return Decision::To(
            n - 1,
            format!(
                "{:.0} rps = {:.0} per replica with one fewer (bound {:.0}), p99 {p99}, {} windows in a row",
                load.rps,
                load.rps / (n - 1) as f64,
                a.down_rps,
                s.down
            ),
        );
    }
    Decision::Stay
}

impl Manager {
    /// Create or remove replicas until there are `want` (compose mode). Scale-in takes the
    /// highest-numbered replicas and stops them gracefully: SIGTERM makes the shop stop accepting
    /// (nginx's next connection is refused and goes to another replica) and finish what it has.
    pub async fn scale_to(&self, want: usize, reason: &str) -> anyhow::Result<()> {
        if !self.engine.can_scale() {
            bail!("in Swarm mode the number of replicas is Swarm's: docker service scale");
        }
        if want == 0 || want > 64 {
            bail!("replicas must be between 1 and 64, got {want}");
        }
        let list = self.engine.replicas().await?;
        let live: Vec<_> = list.iter().filter(|c| c.state == "running").collect();
        let n = list.len();
        if want > n {
            let Some(template) =
                live.iter().find(|c| c.health.as_deref() == Some("healthy")).or(live.first())
            else {
                bail!("no running replica to copy");
            };
            let first = list.iter().map(|c| c.number).max().unwrap_or(0) + 1;
            for next in (first..).take(want - n) {
                let t0 = Instant::now();
                match self.engine.clone_replica(template, next).await {
                    Ok(name) => self.shared.record("scale-out", &name, reason, "ok", t0.elapsed()),
                    Err(e) => {
                        self.shared.record(
                            "scale-out",
                            &format!("#{next}"),
                            reason,
                            &format!("error: {e:#}"),
                            t0.elapsed(),
                        );
                        return Err(e);
                    }
                }
            }
        } else if want < n {
            let mut victims = list.clone();
            victims.sort_by_key(|c| std::cmp::Reverse(c.number));
            for c in victims.into_iter().take(n - want) {
                let t0 = Instant::now();
                // not judged while it drains (it stops answering its health check on purpose)
                if let Some(t) = self.shared.lock().replicas.get_mut(&c.id) {
                    t.action = Some(("scale-in".into(), t0));
                }
                let r = self.engine.stop_and_remove(&c.id, Duration::from_secs(10)).await;
                let outcome = match &r {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("error: {e:#}"),
                };
                self.shared.record("scale-in", &c.name, reason, &outcome, t0.elapsed());
                r?;
            }
        }
        self.discover().await;
        Ok(())
    }

    /// Scrape every replica once; (replica id → sample).
    pub async fn scrape(&self, client: &reqwest::Client) -> HashMap<String, Sample> {
        let targets: Vec<(String, String)> = {
            let g = self.shared.lock();
            g.replicas.values().filter_map(|t| t.c.ip.clone().map(|ip| (t.c.id.clone(), ip))).collect()
        };
        let port = self.cfg.replica_port;
        let futs = targets.into_iter().map(|(id, ip)| {
            let client = client.clone();
            async move {
                let r = client.get(format!("http://{ip}:{port}/metrics")).send().await.ok()?;
                let text = r.text().await.ok()?;
                Some((id, parse_metrics(&text)))
            }
        });
        futures_util::future::join_all(futs).await.into_iter().flatten().collect()
    }

    pub async fn autoscale_loop(self) {
        let Some(a) = self.cfg.autoscale.clone() else { return };
        let client = match reqwest::Client::builder().timeout(Duration::from_secs(1)).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "autoscaler: no HTTP client");
                return;
            }
        };
        tracing::info!(min = a.min, max = a.max, up_rps = a.up_rps, down_rps = a.down_rps, "autoscaler on");
        let mut prev = self.scrape(&client).await;
        let mut prev_at = Instant::now();
        let mut streaks = Streaks::default();
        loop {
            tokio::time::sleep(a.window).await;
            let now_samples = self.scrape(&client).await;
            let secs = prev_at.elapsed().as_secs_f64().max(0.001);
            prev_at = Instant::now();
            let mut rps = 0.0;
            let mut before = Sample::default();
            let mut after = Sample::default();
            let mut measured = 0;
            for (id, s) in &now_samples {
                // a replica new since the last window (or restarted: its counters fell) counts
                // from its next window
                let Some(p) = prev.get(id).filter(|p| p.requests <= s.requests) else { continue };
                measured += 1;
                rps += (s.requests - p.requests) / secs;
                merge(&mut before, p);
                merge(&mut after, s);
            }
            prev = now_samples;
            let n = self.shared.lock().replicas.len();
            let load = LoadFigures {
                rps,
                rps_per_replica: if n > 0 { rps / n as f64 } else { 0.0 },
                p99_ms: p99_between(&before, &after),
                replicas_measured: measured,
                at_unix_ms: unix_ms(),
            };
            self.shared.lock().load = Some(load.clone());
            if n == 0 {
                continue;
            }
            if let Decision::To(want, why) = decide(&a, n, &load, &mut streaks, Instant::now()) {
                tracing::info!(from = n, to = want, reason = %why, rps = load.rps, p99_ms = ?load.p99_ms, "autoscale");
                self.shared.lock().autoscale_note = Some(format!("{n} → {want}: {why}"));
                if let Err(e) = self.scale_to(want, &why).await {
                    tracing::warn!(error = %format!("{e:#}"), "autoscale failed");
                }
                streaks = Streaks { last_change: Some(Instant::now()), ..Streaks::default() };
                // the new set's counters start from here
                prev = self.scrape(&client).await;
                prev_at = Instant::now();
            }
        }
    }
}

fn merge(into: &mut Sample, s: &Sample) {
    into.requests += s.requests;
    into.errors += s.errors;
    for (le, n) in &s.buckets {
        match into.buckets.iter_mut().find(|(l, _)| l == le) {
            Some(b) => b.1 += n,
            None => into.buckets.push((*le, *n)),
        }
    }
    into.buckets.sort_by(|x, y| x.0.total_cmp(&y.0));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const TEXT: &str = r#"# TYPE shop_http_requests_total counter
shop_http_requests_total{method="GET",route="/",status="200"} 90
shop_http_requests_total{method="GET",route="/healthz",status="200"} 1000
shop_http_requests_total{method="POST",route="/api/cart/items",status="201"} 10
shop_http_request_duration_seconds_bucket{route="/",le="0.01"} 80
shop_http_request_duration_seconds_bucket{route="/",le="0.1"} 89
shop_http_request_duration_seconds_bucket{route="/",le="+Inf"} 90
shop_http_request_duration_seconds_bucket{route="/healthz",le="0.01"} 1000
shop_http_request_duration_seconds_bucket{route="/healthz",le="0.1"} 1000
shop_http_request_duration_seconds_bucket{route="/healthz",le="+Inf"} 1000
shop_http_request_duration_seconds_bucket{route="/api/cart/items",le="0.01"} 10
shop_http_request_duration_seconds_bucket{route="/api/cart/items",le="0.1"} 10
shop_http_request_duration_seconds_bucket{route="/api/cart/items",le="+Inf"} 10
"#;

    #[test]
    fn probes_do_not_count_as_load() {
        let s = parse_metrics(TEXT);
        assert_eq!(s.requests, 100.0);
        assert_eq!(s.errors, 0.0);
        let bad = parse_metrics(
            "shop_http_requests_total{method=\"GET\",route=\"/\",status=\"500\"} 7\nshop_http_requests_total{method=\"GET\",route=\"/\",status=\"200\"} 3\n",
        );
        assert_eq!((bad.requests, bad.errors), (10.0, 7.0));
        assert_eq!(s.buckets, vec![(0.01, 90.0), (0.1, 99.0), (f64::INFINITY, 100.0)]);
    }

    #[test]
    fn p99_from_histogram_deltas() {
        let before = Sample::default();
        let after = parse_metrics(TEXT);
        // 99 of 100 under 100 ms
        assert_eq!(p99_between(&before, &after), Some(100.0));
        assert_eq!(p99_between(&after, &after), None);
    }

    fn auto() -> Autoscale {
        Autoscale {
            min: 2,
            max: 5,
            up_rps: 100.0,
            up_p99: Duration::from_millis(150),
            down_rps: 40.0,
            windows: 2,
            window: Duration::from_secs(3),
            cooldown: Duration::from_secs(20),
        }
    }

    fn load(rps: f64, p99: Option<f64>) -> LoadFigures {
        LoadFigures { rps, p99_ms: p99, ..Default::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn scales_out_after_consecutive_windows_then_cools_down() {
        let a = auto();
        let mut s = Streaks::default();
        let now = Instant::now();
        assert_eq!(decide(&a, 2, &load(300.0, Some(20.0)), &mut s, now), Decision::Stay);
        let Decision::To(n, why) = decide(&a, 2, &load(300.0, Some(20.0)), &mut s, now) else {
            panic!("should scale out")
        };
        // 300 rps at the band's middle (70 per replica): 5, the maximum
        assert_eq!(n, 5);
        assert!(why.contains("300 rps"), "{why}");
        s = Streaks { last_change: Some(now), ..Default::default() };
        for _ in 0..5 {
            assert_eq!(
                decide(&a, 3, &load(1000.0, None), &mut s, now + Duration::from_secs(5)),
                Decision::Stay
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn high_p99_scales_out_and_the_band_prevents_flapping() {
        let a = auto();
        let mut s = Streaks::default();
        let now = Instant::now();
        decide(&a, 3, &load(60.0, Some(400.0)), &mut s, now);
        assert!(matches!(decide(&a, 3, &load(60.0, Some(400.0)), &mut s, now), Decision::To(4, _)));
        // in the band (neither above 100 per replica nor below 40 with one fewer): stay, forever
        let mut s = Streaks::default();
        for _ in 0..50 {
            assert_eq!(decide(&a, 3, &load(150.0, Some(20.0)), &mut s, now), Decision::Stay);
        }
        // idle: in by one after 3 x windows, never below the minimum
        let mut s = Streaks::default();
        let mut last = Decision::Stay;
        for _ in 0..6 {
            last = decide(&a, 3, &load(10.0, Some(5.0)), &mut s, now);
        }
        assert!(matches!(last, Decision::To(2, _)), "{last:?}");
        let mut s = Streaks::default();
        for _ in 0..20 {
            assert_eq!(decide(&a, 2, &load(0.0, None), &mut s, now), Decision::Stay);
        }
    }
}
