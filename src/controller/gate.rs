//! A bounded hand-off between the triggers and a kube-runtime `Controller`.
//!
//! kube-runtime's scheduler takes every request its trigger streams offer at once and holds
//! each twice (in its delay queue and in its deduplication map), then a third time while the
//! reconcile slots are full, in tables that never shrink. A cold start of 10,000 customers
//! and 10,000 decisions put 20,000 requests there: about 14 MB at the controller's peak, more
//! than any other part but the caches themselves.
//!
//! The gate sits in front: it drains the triggers into a queue of its own (first in, first out,
//! each object once, as one shared string `namespace/name`) and hands the controller at most
//! [`LIMIT`] objects at a time, the next one each time the controller reports a reconcile of
//! one of them ended ([`Gate::finished`], fed from the controller's output stream). The
//! controller's own deduplication, retries and requeues are unchanged: the gate only decides
//! when a request reaches it.

use futures::stream::{BoxStream, SelectAll, StreamExt};
use futures::task::AtomicWaker;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use std::collections::{HashSet, VecDeque};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// How many objects the controller may hold at once: enough to keep its reconcile slots busy
/// (four times their number) while the next ones are handed over.
pub const LIMIT: usize = 64;

/// How many trigger requests one poll takes in before handing out (the rest at the next poll).
const DRAIN: usize = 1024;

/// An object as the gate holds it: `namespace/name`, or `/name` for cluster-scoped objects
/// (neither a namespace nor a name can contain `/`). One allocation, shared by the queue and the
/// set that deduplicates it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Key(Arc<str>);

impl Key {
    fn new(namespace: Option<&str>, name: &str) -> Self {
        Key(format!("{}/{name}", namespace.unwrap_or_default()).into())
    }

    fn of<K: Resource<DynamicType = ()>>(r: &ObjectRef<K>) -> Self {
        Key::new(r.namespace.as_deref(), &r.name)
    }

    fn to_ref<K: Resource<DynamicType = ()>>(&self) -> ObjectRef<K> {
        let (namespace, name) = self.0.split_once('/').unwrap_or(("", &self.0));
        let r = ObjectRef::new(name);
        if namespace.is_empty() { r } else { r.within(namespace) }
    }
}

#[derive(Default)]
struct State {
    /// Waiting to be handed over, oldest first.
    queue: VecDeque<Key>,
    /// What `queue` holds.
    queued: HashSet<Key>,
    /// Handed over, and no reconcile of them has ended since.
    outstanding: HashSet<Key>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// The request stream, woken when an outstanding object is released.
    waker: AtomicWaker,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after every statement that changes it: a panic elsewhere
        // while holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The gate of one controller of `K`: its [`requests`](Gate::requests) go to
/// `Controller::reconcile_on`, and each item of the controller's output to
/// [`finished`](Gate::finished).
pub struct Gate<K> {
    shared: Arc<Shared>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Gate<K> {
    fn clone(&self) -> Self {
        Gate {
            shared: self.shared.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> Default for Gate<K> {
    fn default() -> Self {
        Gate {
            shared: Arc::default(),
            kind: PhantomData,
        }
    }
}

impl<K: Resource<DynamicType = ()> + 'static> Gate<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The requests of `triggers`, deduplicated while they wait, at most [`LIMIT`] of them
    /// outstanding. The stream never ends (ended triggers are dropped from it).
    pub fn requests(
        &self,
        triggers: Vec<BoxStream<'static, ObjectRef<K>>>,
    ) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static {
        let shared = self.shared.clone();
        let mut triggers: SelectAll<BoxStream<'static, ObjectRef<K>>> = futures::stream::select_all(triggers);
        futures::stream::poll_fn(move |cx: &mut Context<'_>| {
            let mut taken = 0;
            while taken < DRAIN {
                match triggers.poll_next_unpin(cx) {
                    Poll::Ready(Some(r)) => {
                        taken += 1;
                        let key = Key::of(&r);
                        let mut state = shared.state();
                        if state.queued.insert(key.clone()) {
                            state.queue.push_back(key);
                        }
                    }
                    // No trigger left (or none yet): what is queued still goes out.
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            if taken == DRAIN {
                // More may be ready: come back after handing out.
                cx.waker().wake_by_ref();
            }
            shared.waker.register(cx.waker());
            let mut state = shared.state();
            if state.outstanding.len() < LIMIT
                && let Some(key) = state.queue.pop_front()
            {
                state.queued.remove(&key);
                let r = key.to_ref();
                state.outstanding.insert(key);
                return Poll::Ready(Some(r));
            }
            Poll::Pending
        })
    }

    /// A reconcile of the object `namespace/name` ended (or the controller found it gone):
    /// it is no longer outstanding, and the next waiting object may go.
    pub fn finished(&self, namespace: Option<&str>, name: &str) {
        let released = self.shared.state().outstanding.remove(&Key::new(namespace, name));
        if released {
            self.shared.waker.wake();
        }
    }

    /// [`finished`](Gate::finished) for an item of the controller's output stream: a reconcile
    /// that ended, failed, or found its object gone. Errors of the controller's own queue name
    /// no object and release nothing.
    pub fn finished_with<A, E1: 'static, E2: 'static>(
        &self,
        output: &Result<(ObjectRef<K>, A), kube::runtime::controller::Error<E1, E2>>,
    ) {
        use kube::runtime::controller::Error;
        match output {
            Ok((r, _)) => self.finished(r.namespace.as_deref(), &r.name),
            Err(Error::ObjectNotFound(r) | Error::ReconcilerFailed(_, r)) => {
                self.finished(r.namespace.as_deref(), &r.name)
            }
            Err(_) => {}
        }
    }

    /// How many objects wait, and how many are outstanding.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let state = self.shared.state();
        (state.queue.len(), state.outstanding.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CustomerAccount;
    use futures::FutureExt;

    fn r(namespace: &str, name: &str) -> ObjectRef<CustomerAccount> {
        ObjectRef::new(name).within(namespace)
    }

    /// The next request, if one is ready now.
    fn next(
        stream: &mut (impl futures::Stream<Item = ObjectRef<CustomerAccount>> + Unpin),
    ) -> Option<ObjectRef<CustomerAccount>> {
        stream.next().now_or_never().flatten()
    }

    #[test]
    fn keys_read_back_as_the_objects_they_name() {
        let namespaced = Key::of(&r("dist", "acme"));
        assert_eq!(namespaced.to_ref::<CustomerAccount>(), r("dist", "acme"));
        let cluster = Key::of(&ObjectRef::<CustomerAccount>::new("acme"));
        assert_eq!(&*cluster.0, "/acme");
        assert_eq!(cluster.to_ref::<CustomerAccount>(), ObjectRef::new("acme"));
        assert_ne!(namespaced, cluster);
    }

    #[test]
    fn at_most_the_limit_is_outstanding_and_each_end_lets_one_more_through() {
        let gate = Gate::<CustomerAccount>::new();
        let n = LIMIT + 10;
        let triggers = futures::stream::iter((0..n).map(|i| r("dist", &format!("c{i}")))).boxed();
        let mut requests = Box::pin(gate.requests(vec![triggers]));
        let mut handed = vec![];
        while let Some(req) = next(&mut requests) {
            handed.push(req);
        }
        assert_eq!(handed.len(), LIMIT, "no more than the limit before any reconcile ended");
        assert_eq!(gate.counts(), (10, LIMIT));
        // In the order the triggers made them.
        assert_eq!(handed[0], r("dist", "c0"));
        assert_eq!(handed[LIMIT - 1], r("dist", &format!("c{}", LIMIT - 1)));

        gate.finished(Some("dist"), "c0");
        assert_eq!(next(&mut requests), Some(r("dist", &format!("c{LIMIT}"))));
        assert_eq!(next(&mut requests), None, "one ended, one more went");
        // An object the gate did not hand over releases nothing.
        gate.finished(Some("dist"), "unknown");
        gate.finished(Some("elsewhere"), "c1");
        assert_eq!(next(&mut requests), None);
        for i in 1..LIMIT {
            gate.finished(Some("dist"), &format!("c{i}"));
        }
        let rest: Vec<_> = std::iter::from_fn(|| next(&mut requests)).collect();
        assert_eq!(rest.len(), 9, "the rest went once slots were free");
        assert_eq!(gate.counts(), (0, 10));
    }

    #[test]
    fn an_object_waits_once_however_often_it_is_triggered() {
        let gate = Gate::<CustomerAccount>::new();
        // Fill the gate so that the rest waits.
        let fill = (0..LIMIT).map(|i| r("dist", &format!("c{i}")));
        let repeats = std::iter::repeat_n(r("dist", "again"), 5).chain(std::iter::once(r("other", "again")));
        let triggers = futures::stream::iter(fill.chain(repeats)).boxed();
        let mut requests = Box::pin(gate.requests(vec![triggers]));
        while next(&mut requests).is_some() {}
        assert_eq!(gate.counts(), (2, LIMIT), "five triggers of one object wait as one");
        gate.finished(Some("dist"), "c0");
        gate.finished(Some("dist"), "c1");
        let waited: Vec<_> = std::iter::from_fn(|| next(&mut requests)).collect();
        assert_eq!(waited, vec![r("dist", "again"), r("other", "again")]);
    }

    #[test]
    fn an_outstanding_object_triggered_again_is_handed_over_again() {
        // A change while the object is being reconciled must reconcile it once more: the
        // controller holds the second request until the first reconcile ends.
        let gate = Gate::<CustomerAccount>::new();
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut requests = Box::pin(gate.requests(vec![rx.boxed()]));
        tx.unbounded_send(r("dist", "acme")).expect("send");
        assert_eq!(next(&mut requests), Some(r("dist", "acme")));
        tx.unbounded_send(r("dist", "acme")).expect("send");
        assert_eq!(next(&mut requests), Some(r("dist", "acme")));
        assert_eq!(gate.counts(), (0, 1));
    }

    #[tokio::test]
    async fn a_waiting_stream_wakes_when_an_object_is_released() {
        let gate = Gate::<CustomerAccount>::new();
        let triggers = futures::stream::iter((0..=LIMIT).map(|i| r("dist", &format!("c{i}")))).boxed();
        let mut requests = Box::pin(gate.requests(vec![triggers]));
        for _ in 0..LIMIT {
            requests.next().await.expect("a request");
        }
        let releasing = gate.clone();
        let waiter = tokio::spawn(async move { requests.next().await });
        tokio::task::yield_now().await;
        releasing.finished(Some("dist"), "c3");
        let last = tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("woken by the release")
            .expect("task");
        assert_eq!(last, Some(r("dist", &format!("c{LIMIT}"))));
    }

    #[test]
    fn the_controllers_outputs_release_their_objects() {
        use kube::runtime::controller::{Action, Error};
        let gate = Gate::<CustomerAccount>::new();
        let triggers = futures::stream::iter(["a", "b", "c", "d"].map(|n| r("dist", n))).boxed();
        let mut requests = Box::pin(gate.requests(vec![triggers]));
        while next(&mut requests).is_some() {}
        assert_eq!(gate.counts(), (0, 4));
        type Out = Result<(ObjectRef<CustomerAccount>, Action), Error<std::io::Error, std::io::Error>>;
        let outputs: Vec<Out> = vec![
            Ok((r("dist", "a"), Action::await_change())),
            Err(Error::ReconcilerFailed(
                std::io::Error::other("failed"),
                Box::new(r("dist", "b").erase()),
            )),
            Err(Error::ObjectNotFound(Box::new(r("dist", "c").erase()))),
            Err(Error::QueueError(std::io::Error::other("queue"))),
        ];
        for out in &outputs {
            gate.finished_with(out);
        }
        assert_eq!(gate.counts(), (0, 1), "d stays outstanding: no output named it");
    }
}
