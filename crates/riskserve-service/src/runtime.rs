//! The endpoint runtime: what serves invocations. Each variant runs on `instances` worker units,
//! each a bounded queue drained by its own OS thread; all units of a variant share one loaded
//! [`Scorer`]. The hot path reads only this in-memory state and never awaits the store.
//!
//! Draining needs no bookkeeping: a unit's queue closes when the last handle to the unit goes
//! (the runtime was replaced and every request that picked it has queued its job), and its
//! thread then finishes the queued jobs and exits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::codec::{self, BodyFormat};
use crate::error::ServiceError;
use crate::scoring::{ScoreOptions, Scorer};

/// How long a client is told to wait after a 503.
const RETRY_AFTER_SECONDS: u32 = 1;

/// One invocation, as the worker thread sees it.
pub struct Job {
    pub body: Bytes,
    pub format: BodyFormat,
    pub options: ScoreOptions,
    pub reply: oneshot::Sender<Result<Vec<u8>, ServiceError>>,
}

/// Decodes, scores and encodes one request: everything the worker thread does.
fn run_job(scorer: &Scorer, job: &Job) -> Result<Vec<u8>, ServiceError> {
    let rows = match job.format {
        BodyFormat::Csv => codec::decode_csv(&job.body, scorer.inputs())?,
        BodyFormat::Json => codec::decode_json(&job.body, scorer.inputs())?,
    };
    let outcomes = scorer.score_batch(&rows, &job.options).map_err(|errors| codec::row_errors(&errors))?;
    codec::encode(&outcomes, job.format, scorer)
}

/// A gate the worker threads of a variant pass before each job; tests close it to hold the
/// workers busy and fill the queues deterministically.
#[derive(Debug, Default)]
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap_or_else(|poison| poison.into_inner());
        while *closed {
            closed = self.opened.wait(closed).unwrap_or_else(|poison| poison.into_inner());
        }
    }

    fn set_closed(&self, value: bool) {
        *self.closed.lock().unwrap_or_else(|poison| poison.into_inner()) = value;
        self.opened.notify_all();
    }
}

/// A bounded queue and the thread that drains it.
struct WorkerUnit {
    sender: SyncSender<Job>,
    /// Jobs queued or running: the load that routing balances.
    pending: Arc<AtomicUsize>,
}

impl WorkerUnit {
    fn start(label: &str, scorer: Arc<Scorer>, gate: Arc<Gate>, queue_depth: usize) -> Result<WorkerUnit, String> {
        let (sender, receiver): (SyncSender<Job>, Receiver<Job>) = sync_channel(queue_depth);
        let pending = Arc::new(AtomicUsize::new(0));
        let thread_pending = Arc::clone(&pending);
        std::thread::Builder::new()
            .name(label.chars().take(15).collect())
            .spawn(move || {
                while let Ok(job) = receiver.recv() {
                    gate.pass();
                    // A bug in scoring must cost one request, not the unit: the thread lives on.
                    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_job(&scorer, &job)))
                        .unwrap_or_else(|_| Err(ServiceError::internal("scoring panicked on this request")));
                    thread_pending.fetch_sub(1, Ordering::Relaxed);
                    // The client may have gone; its answer is then dropped.
                    let _ = job.reply.send(answer);
                }
            })
            .map_err(|error| format!("cannot start a worker thread for {label}: {error}"))?;
        Ok(WorkerUnit { sender, pending })
    }
}

/// A production variant at run time.
pub struct VariantRuntime {
    pub name: String,
    scorer: Arc<Scorer>,
    units: ArcSwap<Vec<Arc<WorkerUnit>>>,
    /// Serialises instance-count changes.
    resize: Mutex<()>,
    gate: Arc<Gate>,
    queue_depth: usize,
    label: String,
    /// The model the variant serves (the façades describe outputs by it).
    model: String,
}

impl VariantRuntime {
    pub fn start(
        endpoint: &str,
        name: &str,
        instances: u32,
        scorer: Arc<Scorer>,
        queue_depth: usize,
    ) -> Result<VariantRuntime, String> {
        let variant = VariantRuntime {
            name: name.to_string(),
            scorer,
            units: ArcSwap::from_pointee(Vec::new()),
            resize: Mutex::new(()),
            gate: Arc::new(Gate::default()),
            queue_depth: queue_depth.max(1),
            label: format!("{endpoint}/{name}"),
            model: String::new(),
        };
        variant.set_instances(instances)?;
        Ok(variant)
    }

    /// Names the model the variant serves.
    pub fn for_model(mut self, model: &str) -> VariantRuntime {
        self.model = model.to_string();
        self
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The loaded model (its input fields and output columns).
    pub fn scorer(&self) -> &Scorer {
        &self.scorer
    }

    pub fn instances(&self) -> usize {
        self.units.load().len()
    }

    /// Jobs queued or running on the variant's units (the queue depth metric).
    pub fn pending_jobs(&self) -> usize {
        self.units.load().iter().map(|unit| unit.pending.load(Ordering::Relaxed)).sum()
    }

    /// Changes the number of worker units; removed units finish their queued jobs first.
    pub fn set_instances(&self, instances: u32) -> Result<(), String> {
        let _serial = self.resize.lock().unwrap_or_else(|poison| poison.into_inner());
        let current = self.units.load_full();
        let wanted = instances as usize;
        let mut units: Vec<Arc<WorkerUnit>> = current.iter().take(wanted).cloned().collect();
        while units.len() < wanted {
            units.push(Arc::new(WorkerUnit::start(
                &self.label,
                Arc::clone(&self.scorer),
                Arc::clone(&self.gate),
                self.queue_depth,
            )?));
        }
        self.units.store(Arc::new(units));
        Ok(())
    }

    /// Queues a job on the least-loaded unit; when every queue is full the job comes back as an
    /// `overloaded` error.
    pub fn submit(&self, job: Job) -> Result<(), ServiceError> {
        let units = self.units.load();
        let Some(start) =
            units.iter().enumerate().min_by_key(|(_, unit)| unit.pending.load(Ordering::Relaxed)).map(|(at, _)| at)
        else {
            return Err(self.overloaded());
        };
        let mut job = job;
        // Least loaded first, then the others in turn: a full queue never refuses a job that
        // another unit could take.
        for offset in 0..units.len() {
            let Some(unit) = units.get((start + offset) % units.len()) else { continue };
            unit.pending.fetch_add(1, Ordering::Relaxed);
            match unit.sender.try_send(job) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(returned) | TrySendError::Disconnected(returned)) => {
                    unit.pending.fetch_sub(1, Ordering::Relaxed);
                    job = returned;
                }
            }
        }
        Err(self.overloaded())
    }

    fn overloaded(&self) -> ServiceError {
        ServiceError::Overloaded {
            message: format!("every queue of variant {:?} is full; retry later", self.name),
            retry_after_seconds: RETRY_AFTER_SECONDS,
        }
    }

    /// Holds (true) or releases (false) every worker of the variant before its next job.
    pub fn hold_workers(&self, hold: bool) {
        self.gate.set_closed(hold);
    }
}

/// An endpoint's serving variants and the traffic split between them. Immutable: a weight change
/// installs a new one that shares the same variants (nothing restarts, nothing drains).
pub struct EndpointRuntime {
    pub name: String,
    pub variants: Vec<Arc<VariantRuntime>>,
    /// The variants' current weights, in order.
    weights: Vec<f64>,
    /// Running sums of the weights, for weighted picks.
    cumulative: Vec<f64>,
    picks: AtomicU64,
    /// The endpoint config it serves (configs never change, so this names the variants' settings and the capture).
    pub config: Option<String>,
    /// What the endpoint's config captures of its invocations.
    pub capture: Option<Arc<crate::capture::Capture>>,
}

impl EndpointRuntime {
    /// `weights` holds one weight per variant, in order.
    pub fn new(name: &str, variants: Vec<Arc<VariantRuntime>>, weights: Vec<f64>) -> EndpointRuntime {
        let mut total = 0.0;
        let cumulative = weights
            .iter()
            .map(|weight| {
                total += weight.max(0.0);
                total
            })
            .collect();
        EndpointRuntime {
            name: name.to_string(),
            variants,
            weights,
            cumulative,
            picks: AtomicU64::new(0),
            config: None,
            capture: None,
        }
    }

    /// The runtime of endpoint config `config`, capturing its invocations as `capture` says.
    pub fn of_config(mut self, config: Option<&str>, capture: Option<Arc<crate::capture::Capture>>) -> EndpointRuntime {
        self.config = config.map(str::to_string);
        self.capture = capture;
        self
    }

    /// The same variants (and capture) with other weights.
    pub fn with_weights(&self, weights: Vec<f64>) -> EndpointRuntime {
        let mut runtime = EndpointRuntime::new(&self.name, self.variants.clone(), weights);
        runtime.picks.store(self.picks.load(Ordering::Relaxed), Ordering::Relaxed);
        runtime.config.clone_from(&self.config);
        runtime.capture.clone_from(&self.capture);
        runtime
    }

    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The variant a request goes to: the one it names, else one drawn by weight.
    pub fn pick(&self, target: Option<&str>) -> Result<&Arc<VariantRuntime>, ServiceError> {
        if let Some(target) = target {
            return self.variants.iter().find(|variant| variant.name == target).ok_or_else(|| {
                ServiceError::validation(format!("endpoint {:?} has no variant {target:?}", self.name))
            });
        }
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let draw = unit_interval(self.picks.fetch_add(1, Ordering::Relaxed)) * total;
        let index = self.cumulative.iter().position(|sum| draw < *sum).unwrap_or(0);
        self.variants
            .get(index)
            .ok_or_else(|| ServiceError::internal(format!("endpoint {:?} has no variants", self.name)))
    }

    pub fn variant(&self, name: &str) -> Option<&Arc<VariantRuntime>> {
        self.variants.iter().find(|variant| variant.name == name)
    }
}

/// A well-mixed number in [0, 1) from a counter (SplitMix64), so that weighted picks follow the
/// weights without a shared random generator.
fn unit_interval(counter: u64) -> f64 {
    let mut z = counter.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Every serving endpoint; readers take a snapshot without locking.
#[derive(Default)]
pub struct Runtimes {
    endpoints: ArcSwap<HashMap<String, Arc<EndpointRuntime>>>,
    writers: Mutex<()>,
}

impl Runtimes {
    pub fn get(&self, name: &str) -> Option<Arc<EndpointRuntime>> {
        self.endpoints.load().get(name).cloned()
    }

    /// The only serving endpoint, when exactly one serves (the container contract's `/invocations`).
    pub fn only(&self) -> Option<Arc<EndpointRuntime>> {
        let endpoints = self.endpoints.load();
        if endpoints.len() == 1 { endpoints.values().next().cloned() } else { None }
    }

    /// Puts `runtime` in service atomically; the one it replaces drains.
    pub fn install(&self, runtime: Arc<EndpointRuntime>) {
        let _serial = self.writers.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut next = HashMap::clone(&self.endpoints.load());
        next.insert(runtime.name.clone(), runtime);
        self.endpoints.store(Arc::new(next));
    }

    /// Takes an endpoint out of service; its variants drain.
    pub fn remove(&self, name: &str) {
        let _serial = self.writers.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut next = HashMap::clone(&self.endpoints.load());
        next.remove(name);
        self.endpoints.store(Arc::new(next));
    }

    /// Every serving endpoint, in no particular order.
    pub fn all(&self) -> Vec<Arc<EndpointRuntime>> {
        self.endpoints.load().values().cloned().collect()
    }

    pub fn clear(&self) {
        let _serial = self.writers.lock().unwrap_or_else(|poison| poison.into_inner());
        self.endpoints.store(Arc::new(HashMap::new()));
    }
}
