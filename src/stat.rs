//! Statistics as a tree, as NNG 2.x's `nng_stats_get` gives them: a scope per socket,
//! with a scope per dialer, listener and pipe under it, each holding NNG's names
//! (`tx_msgs`, `rx_bytes`, `reject`, `connect`, `refused`, `accept`, ...).
//!
//! The counters behind it are kept where the work already holds a lock (a socket's
//! traffic under the socket's lock, a dialer's outcomes under the dialer's), so keeping
//! them costs a few additions per message and nothing more; only taking a snapshot walks
//! the sockets.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::socket::SocketInner;
use crate::Socket;

/// What a [`Stat`] holds, as NNG's `nng_stat_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatValue {
    /// A scope: only children (`NNG_STAT_SCOPE`).
    Scope,
    /// A value that goes up and down (`NNG_STAT_LEVEL`).
    Level(u64),
    /// A value that only goes up (`NNG_STAT_COUNTER`).
    Counter(u64),
    /// Text (`NNG_STAT_STRING`).
    String(String),
    /// An identifier (`NNG_STAT_ID`).
    Id(u64),
}

/// One node of the statistics tree (`nng_stat`): a name, a description, a value, and
/// children.
///
/// # Examples
///
/// ```
/// use nanoport::{Socket, StatValue};
/// let pull = Socket::pull0().unwrap();
/// pull.listen("inproc://stat-doc").unwrap();
/// let push = Socket::push0().unwrap();
/// push.dial("inproc://stat-doc").unwrap();
/// push.send("hello").unwrap();
/// pull.recv().unwrap();
/// let s = pull.stat();
/// assert_eq!(s.find("rx_msgs").map(|s| s.value()), Some(&StatValue::Counter(1)));
/// assert_eq!(s.find("rx_bytes").map(|s| s.value()), Some(&StatValue::Counter(5)));
/// println!("{s}"); // the tree, one statistic per line
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    name: &'static str,
    desc: &'static str,
    value: StatValue,
    children: Vec<Stat>,
}

impl Stat {
    pub(crate) fn scope(name: &'static str, desc: &'static str, children: Vec<Stat>) -> Stat {
        Stat {
            name,
            desc,
            value: StatValue::Scope,
            children,
        }
    }
    pub(crate) fn counter(name: &'static str, desc: &'static str, v: u64) -> Stat {
        Stat::leaf(name, desc, StatValue::Counter(v))
    }
    pub(crate) fn level(name: &'static str, desc: &'static str, v: u64) -> Stat {
        Stat::leaf(name, desc, StatValue::Level(v))
    }
    pub(crate) fn id(name: &'static str, desc: &'static str, v: impl Into<u64>) -> Stat {
        Stat::leaf(name, desc, StatValue::Id(v.into()))
    }
    pub(crate) fn string(name: &'static str, desc: &'static str, v: String) -> Stat {
        Stat::leaf(name, desc, StatValue::String(v))
    }
    fn leaf(name: &'static str, desc: &'static str, value: StatValue) -> Stat {
        Stat {
            name,
            desc,
            value,
            children: Vec::new(),
        }
    }

    /// The statistic's name (`nng_stat_name`).
    pub fn name(&self) -> &str {
        self.name
    }

    /// What it counts (`nng_stat_desc`).
    pub fn desc(&self) -> &str {
        self.desc
    }

    /// Its value (`nng_stat_value`, `nng_stat_string`).
    pub fn value(&self) -> &StatValue {
        &self.value
    }

    /// Its children (`nng_stat_child`, `nng_stat_next`).
    pub fn children(&self) -> &[Stat] {
        &self.children
    }

    /// The first statistic named `name` in this subtree, depth first, this node included
    /// (`nng_stat_find`).
    pub fn find(&self, name: &str) -> Option<&Stat> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        let pad = depth * 4;
        match &self.value {
            StatValue::Scope => writeln!(f, "{:pad$}{}:", "", self.name)?,
            StatValue::Level(v) | StatValue::Counter(v) | StatValue::Id(v) => {
                writeln!(f, "{:pad$}{:<12} {v}", "", self.name)?
            }
            StatValue::String(s) => writeln!(f, "{:pad$}{:<12} \"{s}\"", "", self.name)?,
        }
        for c in &self.children {
            c.write(f, depth + 1)?;
        }
        Ok(())
    }
}

impl fmt::Display for Stat {
    /// The tree, one statistic per line, children indented under their scope (as NNG's
    /// `nng_stats_dump` prints it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}

/// Every open socket, for [`stats`]: touched once when a socket opens, and by snapshots.
fn sockets() -> std::sync::MutexGuard<'static, Vec<Weak<SocketInner>>> {
    static ALL: OnceLock<Mutex<Vec<Weak<SocketInner>>>> = OnceLock::new();
    ALL.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn register(s: &Arc<SocketInner>) {
    let mut all = sockets();
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(s));
}

/// A snapshot of every open socket's statistics (`nng_stats_get`): a root scope with a
/// `socket` scope per socket.
///
/// # Examples
///
/// ```
/// let s = nanoport::Socket::rep0().unwrap();
/// let all = nanoport::stats();
/// assert!(all.children().iter().any(|c| c.find("id").map(|i| i.value())
///     == Some(&nanoport::StatValue::Id(u64::from(s.id())))));
/// ```
pub fn stats() -> Stat {
    let live: Vec<Arc<SocketInner>> = sockets().iter().filter_map(Weak::upgrade).collect();
    let children = live.iter().filter_map(|s| s.stat()).collect();
    Stat::scope("nanoport", "all sockets", children)
}

impl Socket {
    /// A snapshot of this socket's statistics, with its dialers, listeners and pipes
    /// (`nng_stat_find_socket` on `nng_stats_get`'s tree).
    pub fn stat(&self) -> Stat {
        self.inner
            .stat()
            .unwrap_or_else(|| Stat::scope("socket", "socket statistics (closed)", Vec::new()))
    }
}
