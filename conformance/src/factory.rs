//! How the suite gets clients: the [`StoreFactory`] a backend provides, [`FnFactory`] to make one
//! from a closure, and the bounded retry every new client goes through.

use std::error::Error;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chronon_core::{KvError, KvStore};
use futures::future::BoxFuture;

/// Any error a factory may fail with: [`KvError`], `anyhow::Error`, `std::io::Error`, ... all
/// convert into it, so an adapter's test never needs a particular error crate.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// How long opening a new client keeps retrying while it fails with [`KvError::Unavailable`].
///
/// An embedded store (RocksDB) allows one open client per directory, and a client dropped a
/// moment ago may still hold the directory lock until its last background call finishes; servers
/// never need the retry, so a server that is really down costs this much once per failed open.
pub const OPEN_RETRY_FOR: Duration = Duration::from_secs(10);

/// Opens clients of the backend under test.
///
/// Every call to [`open`](StoreFactory::open) must return a *new* client on the *same* database,
/// so the suite can check that a new client sees what an old one wrote and what kind a dataset
/// has. The suite retries an open that fails with [`KvError::Unavailable`] for up to
/// [`OPEN_RETRY_FOR`], so an embedded store needs no retry loop of its own.
#[async_trait]
pub trait StoreFactory: Send + Sync {
    /// A short name for reports: the backend name (`memory`, `rocks`, `redis`, `dynamodb`,
    /// `mongodb`, `scylla`), or a test's own name for a wrapped store.
    fn name(&self) -> String;
    /// A new client on the database under test.
    async fn open(&self) -> Result<Arc<dyn KvStore>, BoxError>;

    /// How many requests the database has served so far, read from the database itself (for
    /// Redis, `INFO stats`' `total_commands_processed`), or `None` if the factory cannot tell.
    ///
    /// The promptness case (`empty_batches_make_no_round_trip`) compares it before and after
    /// empty batches: counting calls proves "no round trip" where timing them could not.
    async fn backend_calls(&self) -> Option<u64> {
        None
    }
}

/// How [`FnFactory::with_call_counter`] reads the database's request counter.
type CallCounter = Arc<dyn Fn() -> BoxFuture<'static, Option<u64>> + Send + Sync>;

/// A [`StoreFactory`] from a closure, for backends whose clients are cheap to make.
///
/// The closure's future may return any store (`RedisStore`, `Arc<dyn KvStore>`, ...) and any
/// error that converts into [`BoxError`] ([`KvError`] directly, or `anyhow::Error`):
///
/// ```
/// use chronon_core::{KvError, MemoryStore};
///
/// let db = MemoryStore::new(); // clones share data, like clients of one server
/// let factory = conformance::FnFactory::new("memory", move || {
///     let db = db.clone();
///     async move { Ok::<_, KvError>(db) }
/// });
/// # let _ = factory;
/// ```
pub struct FnFactory<F> {
    name: String,
    open: F,
    calls: Option<CallCounter>,
}

impl<F, Fut, S, E> FnFactory<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<S, E>> + Send,
    S: KvStore + 'static,
    E: Into<BoxError>,
{
    /// A factory named `name` that calls `open` for each new client.
    pub fn new(name: impl Into<String>, open: F) -> Self {
        FnFactory {
            name: name.into(),
            open,
            calls: None,
        }
    }

    /// Gives the factory a way to read how many requests the database has served (see
    /// [`StoreFactory::backend_calls`]), so the promptness case can run.
    pub fn with_call_counter<C, CF>(mut self, counter: C) -> Self
    where
        C: Fn() -> CF + Send + Sync + 'static,
        CF: Future<Output = Option<u64>> + Send + 'static,
    {
        self.calls = Some(Arc::new(move || Box::pin(counter())));
        self
    }
}

#[async_trait]
impl<F, Fut, S, E> StoreFactory for FnFactory<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<S, E>> + Send,
    S: KvStore + 'static,
    E: Into<BoxError>,
{
    fn name(&self) -> String {
        self.name.clone()
    }
    async fn open(&self) -> Result<Arc<dyn KvStore>, BoxError> {
        match (self.open)().await {
            Ok(store) => Ok(as_shared(store)),
            Err(e) => Err(e.into()),
        }
    }
    async fn backend_calls(&self) -> Option<u64> {
        match &self.calls {
            Some(counter) => counter().await,
            None => None,
        }
    }
}

/// `store` as the suite's shared handle, without wrapping an `Arc<dyn KvStore>` a second time.
fn as_shared<S: KvStore + 'static>(store: S) -> Arc<dyn KvStore> {
    let mut slot = Some(store);
    if let Some(shared) =
        (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<Arc<dyn KvStore>>>()
    {
        if let Some(shared) = shared.take() {
            return shared;
        }
    }
    match slot {
        Some(store) => Arc::new(store),
        None => unreachable!("the store is only taken when it already was an Arc<dyn KvStore>"),
    }
}

/// Whether `error`, or any error in its source chain, is [`KvError::Unavailable`].
fn is_unavailable(error: &(dyn Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if matches!(
            e.downcast_ref::<KvError>(),
            Some(KvError::Unavailable { .. })
        ) {
            return true;
        }
        current = e.source();
    }
    false
}

/// A new client from `factory`, retrying for up to [`OPEN_RETRY_FOR`] while the open fails with
/// [`KvError::Unavailable`].
pub(crate) async fn open_client(factory: &dyn StoreFactory) -> Result<Arc<dyn KvStore>, BoxError> {
    let deadline = Instant::now() + OPEN_RETRY_FOR;
    loop {
        match factory.open().await {
            Ok(store) => return Ok(store),
            Err(e) if Instant::now() < deadline && is_unavailable(&*e) => {
                tracing::debug!("opening a client: unavailable, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
