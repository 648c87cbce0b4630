//! The simulated CronJob controller: at each scheduled minute (in the CronJob's `timeZone`,
//! UTC by default) a Job from the template, named `<cronjob>-<minutes since the epoch>`,
//! owned by the CronJob; only the last of several missed runs starts, none past
//! `startingDeadlineSeconds`; `concurrencyPolicy` (Allow, Forbid, Replace); `suspend`; the
//! status's `active`, `lastScheduleTime` and `lastSuccessfulTime`; finished Jobs beyond the
//! history limits deleted. Writes are the cronjob-controller's, through admission.

use super::workloads::{controller_uid, deleting, text};
use super::*;

const CONTROLLER: &str = "cronjob-controller";

/// A Job's end, if it ended: (succeeded, when).
fn finished(job: &Value) -> Option<(bool, String)> {
    let conditions = job.pointer("/status/conditions")?.as_array()?;
    conditions.iter().find_map(|c| {
        let ended = c["status"] == "True" && (c["type"] == "Complete" || c["type"] == "Failed");
        ended.then(|| {
            let when = job
                .pointer("/status/completionTime")
                .or_else(|| c.get("lastTransitionTime"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (c["type"] == "Complete", when)
        })
    })
}

fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(crate::meta::time_text)
        .unwrap_or_default()
}

impl ApiServer {
    /// One pass of the CronJob controller over a namespace.
    pub(super) fn cronjob_pass(&self, ns: &str) {
        let cronjobs = self.objects("batch/cronjobs", ns);
        if cronjobs.is_empty() {
            return;
        }
        let jobs = self.objects("batch/jobs", ns);
        let now = jiff::Timestamp::now().as_second();
        for cronjob in cronjobs.iter().filter(|c| !deleting(c)) {
            let uid = text(cronjob, "/metadata/uid");
            let owned: Vec<&Arc<Value>> = jobs
                .iter()
                .filter(|j| controller_uid(j) == Some(uid) && !deleting(j))
                .collect();
            self.schedule(cronjob, &owned, now);
        }
    }

    fn schedule(&self, cronjob: &Value, owned: &[&Arc<Value>], now: i64) {
        let ns = text(cronjob, "/metadata/namespace").to_string();
        let mut active: Vec<&Arc<Value>> = owned.iter().copied().filter(|j| finished(j).is_none()).collect();
        let mut last_schedule = cronjob
            .pointer("/status/lastScheduleTime")
            .and_then(Value::as_str)
            .map(str::to_string);
        let suspended = cronjob.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
        let schedule = crate::cron::Schedule::parse(text(cronjob, "/spec/schedule"));
        let zone = match cronjob.pointer("/spec/timeZone").and_then(Value::as_str) {
            Some(tz) => jiff::tz::TimeZone::get(tz).ok(),
            None => Some(jiff::tz::TimeZone::UTC),
        };
        if let (false, Ok(schedule), Some(zone)) = (suspended, schedule, zone) {
            let after = last_schedule
                .as_deref()
                .or_else(|| cronjob.pointer("/metadata/creationTimestamp").and_then(Value::as_str))
                .and_then(parse_time)
                .unwrap_or(now);
            let deadline = cronjob.pointer("/spec/startingDeadlineSeconds").and_then(Value::as_i64);
            if let Some((due, _missed)) = schedule.last_between(after, now, &zone)
                && deadline.is_none_or(|d| now - due <= d)
            {
                let policy = text(cronjob, "/spec/concurrencyPolicy");
                let start = match policy {
                    "Forbid" => active.is_empty(),
                    "Replace" => {
                        for job in active.drain(..) {
                            self.delete_job(&ns, text(job, "/metadata/name"));
                        }
                        true
                    }
                    _ => true,
                };
                if start {
                    let job = self.job_of(cronjob, due, &zone);
                    if self.sim_create("jobs", "batch", &ns, job, CONTROLLER).is_ok() {
                        last_schedule = Some(rfc3339(due));
                    }
                }
            }
        }
        self.trim_history(cronjob, owned);
        self.cronjob_status(cronjob, last_schedule);
    }

    /// The Job a CronJob starts for the run due at `due`.
    fn job_of(&self, cronjob: &Value, due: i64, zone: &jiff::tz::TimeZone) -> Value {
        let template = cronjob
            .pointer("/spec/jobTemplate")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let mut metadata = template.get("metadata").cloned().unwrap_or_else(|| json!({}));
        metadata["name"] = json!(format!("{}-{}", text(cronjob, "/metadata/name"), due / 60));
        metadata["namespace"] = json!(text(cronjob, "/metadata/namespace"));
        let scheduled = jiff::Timestamp::from_second(due)
            .map(|t| t.to_zoned(zone.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
            .unwrap_or_default()
            .replace("+00:00", "Z");
        metadata["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] = json!(scheduled);
        metadata["ownerReferences"] = json!([{
            "apiVersion": "batch/v1", "kind": "CronJob", "name": text(cronjob, "/metadata/name"),
            "uid": text(cronjob, "/metadata/uid"), "controller": true, "blockOwnerDeletion": true,
        }]);
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": metadata,
            "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
        })
    }

    fn delete_job(&self, ns: &str, name: &str) {
        self.sim_delete("jobs", "batch", ns, name, CONTROLLER);
    }

    /// Deletes the oldest finished Jobs beyond `successfulJobsHistoryLimit` (3) and
    /// `failedJobsHistoryLimit` (1).
    fn trim_history(&self, cronjob: &Value, owned: &[&Arc<Value>]) {
        let ns = text(cronjob, "/metadata/namespace");
        for (succeeded, limit) in [
            (
                true,
                cronjob
                    .pointer("/spec/successfulJobsHistoryLimit")
                    .and_then(Value::as_i64)
                    .unwrap_or(3),
            ),
            (
                false,
                cronjob
                    .pointer("/spec/failedJobsHistoryLimit")
                    .and_then(Value::as_i64)
                    .unwrap_or(1),
            ),
        ] {
            let mut ended: Vec<(String, &str)> = owned
                .iter()
                .filter_map(|j| match finished(j) {
                    Some((s, when)) if s == succeeded => Some((when, text(j, "/metadata/name"))),
                    _ => None,
                })
                .collect();
            ended.sort();
            let excess = ended.len().saturating_sub(limit.max(0) as usize);
            for (_, name) in ended.into_iter().take(excess) {
                self.delete_job(ns, name);
            }
        }
    }

    /// The status: the Jobs still running (read again after this pass's writes), the last
    /// scheduled run, the last success.
    fn cronjob_status(&self, cronjob: &Value, last_schedule: Option<String>) {
        let ns = text(cronjob, "/metadata/namespace");
        let uid = text(cronjob, "/metadata/uid");
        let jobs: Vec<Arc<Value>> = self
            .objects("batch/jobs", ns)
            .into_iter()
            .filter(|j| controller_uid(j) == Some(uid) && !deleting(j))
            .collect();
        let mut status = serde_json::Map::new();
        let active: Vec<Value> = jobs
            .iter()
            .filter(|j| finished(j).is_none())
            .map(|j| {
                json!({"apiVersion": "batch/v1", "kind": "Job", "namespace": ns,
                       "name": text(j, "/metadata/name"), "uid": text(j, "/metadata/uid"),
                       "resourceVersion": text(j, "/metadata/resourceVersion")})
            })
            .collect();
        if !active.is_empty() {
            status.insert("active".into(), Value::Array(active));
        }
        if let Some(t) = last_schedule {
            status.insert("lastScheduleTime".into(), json!(t));
        }
        let last_success = jobs
            .iter()
            .filter_map(|j| finished(j).filter(|(s, _)| *s).map(|(_, when)| when))
            .max()
            .or_else(|| {
                cronjob
                    .pointer("/status/lastSuccessfulTime")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        if let Some(t) = last_success {
            status.insert("lastSuccessfulTime".into(), json!(t));
        }
        let status = Value::Object(status);
        // An empty status is not written over a missing one.
        if cronjob.get("status").unwrap_or(&json!({})) != &status {
            self.sim_status("cronjobs", "batch", cronjob, status, CONTROLLER);
        }
    }
}

/// How long until the next whole minute (and a little after, so that the minute has begun).
pub(super) fn until_next_minute() -> Duration {
    let now = jiff::Timestamp::now();
    let into = now.as_millisecond().rem_euclid(60_000) as u64;
    Duration::from_millis(60_000 - into + 50)
}
