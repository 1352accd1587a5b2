//! A network namespace of a test's own, joined to the host by a veth pair: the far side of a
//! link that a test can cut and restore (`ip link set … down/up`), for a process started inside
//! it ([`Netns::command`], `ip netns exec`).
//!
//! Each [`Netns`] gets a unique name (`rapport-<pid>-<n>`), interface names that fit the
//! kernel's 15 characters, and a private /30 of its own in `10.213.0.0/16` (the host side `.1`,
//! the namespace side `.2`), picked so that no address of the machine is in it already: nothing
//! in it routes beyond this machine. Dropping it deletes the veth pair and the namespace, on a
//! panic too; namespaces left by a test process that was killed are swept at the next start.
//!
//! Without permission to make a namespace (not root, a container without `CAP_SYS_ADMIN`, no
//! `ip`), [`Netns::create`] prints `skipping: …` and returns `Ok(None)`; with
//! `RAPPORT_REQUIRE_NETNS=1` (set by `.ci/run`) that is an error instead.
//!
//! Owns: the namespace, the pair, their addresses and the link's state. Does not own what runs
//! inside (the caller's [`std::process::Command`]) nor any traffic shaping (see
//! [`crate::faulty`], the proxy on the host side).

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::Error;
use crate::process::RUNNER_ENV;

/// The environment variable that turns a skip (no permission for namespaces) into an error.
pub const REQUIRE_ENV: &str = "RAPPORT_REQUIRE_NETNS";

/// Every namespace of this harness is named `rapport-<pid>-<n>`.
const PREFIX: &str = "rapport-";
/// The /16 the test links' /30s come from (private, never routed off this machine).
const NET: [u8; 2] = [10, 213];

/// Namespaces made by this process so far (names and subnets).
static MADE: AtomicU32 = AtomicU32::new(0);

/// A network namespace with one veth link to the host. Dropped: both deleted.
#[derive(Debug)]
pub struct Netns {
    name: String,
    host_if: String,
    ns_if: String,
    host_addr: Ipv4Addr,
    ns_addr: Ipv4Addr,
}

impl Netns {
    /// A fresh namespace with its link up: the host's end at [`Netns::host_addr`], the
    /// namespace's at [`Netns::ns_addr`] (and its loopback up). `Ok(None)` after printing the
    /// skip when namespaces cannot be made here.
    ///
    /// # Errors
    /// [`Error::Netns`] when `RAPPORT_REQUIRE_NETNS` is set and namespaces cannot be made, or
    /// when a step after the namespace's creation fails (what was made is removed).
    pub fn create() -> Result<Option<Self>, Error> {
        sweep_stale();
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("{PREFIX}{pid}-{n}");
        if let Err(why) = ip(["netns", "add", name.as_str()]) {
            if require_from_env() {
                return Err(Error::Netns(format!(
                    "cannot make a network namespace ({why}) and {REQUIRE_ENV} is set: run as \
                     root with iproute2 installed"
                )));
            }
            println!("skipping: cannot make a network namespace ({why})");
            return Ok(None);
        }
        let tag = if_tag(pid, n);
        let (host_addr, ns_addr) = free_subnet(pid, n);
        let made = Self {
            name,
            host_if: format!("{tag}h"),
            ns_if: format!("{tag}n"),
            host_addr,
            ns_addr,
        };
        // From here on, a failure drops `made`, which removes what exists.
        made.wire()?;
        Ok(Some(made))
    }

    fn wire(&self) -> Result<(), Error> {
        let (h, n, ns) = (
            self.host_if.as_str(),
            self.ns_if.as_str(),
            self.name.as_str(),
        );
        let host_cidr = format!("{}/30", self.host_addr);
        let ns_cidr = format!("{}/30", self.ns_addr);
        let steps: [&[&str]; 7] = [
            &["link", "add", h, "type", "veth", "peer", "name", n],
            &["link", "set", n, "netns", ns],
            &["addr", "add", &host_cidr, "dev", h],
            &["link", "set", h, "up"],
            &["-n", ns, "addr", "add", &ns_cidr, "dev", n],
            &["-n", ns, "link", "set", n, "up"],
            &["-n", ns, "link", "set", "lo", "up"],
        ];
        for step in steps {
            ip(step.iter().copied()).map_err(Error::Netns)?;
        }
        Ok(())
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's end of the link (a proxy or broker for the namespace listens here).
    pub fn host_addr(&self) -> Ipv4Addr {
        self.host_addr
    }

    /// The namespace's end of the link.
    pub fn ns_addr(&self) -> Ipv4Addr {
        self.ns_addr
    }

    /// Cuts the link from the host's side: the host's end goes down, so the namespace's end
    /// loses its carrier and every packet either way is lost — established connections hang
    /// and new ones wait out their SYNs, as behind a dead cell; nothing is refused.
    ///
    /// # Errors
    /// [`Error::Netns`] if `ip` fails.
    pub fn cut(&self) -> Result<(), Error> {
        ip(["link", "set", self.host_if.as_str(), "down"]).map_err(Error::Netns)
    }

    /// Restores the link after [`Netns::cut`] (the host's address and route come back with it).
    ///
    /// # Errors
    /// [`Error::Netns`] if `ip` fails.
    pub fn restore(&self) -> Result<(), Error> {
        ip(["link", "set", self.host_if.as_str(), "up"]).map_err(Error::Netns)
    }

    /// Cuts the link from the namespace's side: its end goes down and its route with it, so
    /// connections from inside fail at once (`Network is unreachable`) — a modem that lost its
    /// network — and established ones hang.
    ///
    /// # Errors
    /// [`Error::Netns`] if `ip` fails.
    pub fn cut_car_side(&self) -> Result<(), Error> {
        let (ns, n) = (self.name.as_str(), self.ns_if.as_str());
        ip(["-n", ns, "link", "set", n, "down"]).map_err(Error::Netns)
    }

    /// Restores the link after [`Netns::cut_car_side`] (the address stays; the route comes back).
    ///
    /// # Errors
    /// [`Error::Netns`] if `ip` fails.
    pub fn restore_car_side(&self) -> Result<(), Error> {
        let (ns, n) = (self.name.as_str(), self.ns_if.as_str());
        ip(["-n", ns, "link", "set", n, "up"]).map_err(Error::Netns)
    }

    /// A command that runs `bin` inside the namespace (`ip netns exec <name> [runner] bin`),
    /// through `RAPPORT_TEST_RUNNER` as [`crate::process::bin_command`] does. `ip netns exec`
    /// replaces itself with the program: the child's pid is the program's.
    pub fn command(&self, bin: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.name.as_str()]);
        let runner = std::env::var(RUNNER_ENV).unwrap_or_default();
        cmd.args(runner.split_whitespace()).arg(bin);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; the namespace's end goes with the namespace too.
        let _ = ip(["link", "del", self.host_if.as_str()]);
        let _ = ip(["netns", "del", self.name.as_str()]);
    }
}

/// The stem of a pair's interface names: at most 14 bytes (`r`, the pid in hex — at most 7
/// digits under Linux's largest `pid_max` —, `.`, the count's low 12 bits in hex), so with the
/// side's letter it fits the kernel's 15.
fn if_tag(pid: u32, n: u32) -> String {
    format!("r{pid:x}.{:x}", n & 0xfff)
}

fn require_from_env() -> bool {
    std::env::var_os(REQUIRE_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Runs `ip <args>`; the error is `ip`'s stderr (or why it did not run).
fn ip<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let args: Vec<&str> = args.into_iter().collect();
    let out = Command::new("ip")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {} {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip <args>`'s stdout, empty when it fails.
fn ip_output(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// A /30 in `10.213.0.0/16` that no interface of the machine has an address in: the first
/// free one from a start that differs by process and namespace.
fn free_subnet(pid: u32, n: u32) -> (Ipv4Addr, Ipv4Addr) {
    let used = ip_output(&["-o", "-4", "addr", "show"]);
    // 16,384 /30s in the /16; start somewhere that differs by pid and count.
    let start = (pid.wrapping_mul(97) ^ n.wrapping_mul(31)) % 16_384;
    let subnet = |i: u32| {
        let base = ((start + i) % 16_384) * 4;
        let host = Ipv4Addr::new(NET[0], NET[1], (base >> 8) as u8, (base & 0xff) as u8 + 1);
        let ns = Ipv4Addr::new(NET[0], NET[1], (base >> 8) as u8, (base & 0xff) as u8 + 2);
        (host, ns)
    };
    (0..16_384)
        .map(subnet)
        .find(|(host, _)| {
            let o = host.octets();
            // Any address of this /30 (.0 to .3) already on the machine.
            !(0..4u8).any(|last| {
                let addr = Ipv4Addr::new(o[0], o[1], o[2], (o[3] & 0xfc) | last);
                used.contains(&format!("inet {addr}/"))
            })
        })
        .unwrap_or_else(|| subnet(0))
}

/// Deletes namespaces (and their veth pairs) of this harness whose process is gone: a test
/// killed before its drops ran leaves them behind.
fn sweep_stale() {
    for line in ip_output(&["netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some((pid, _)) = name.strip_prefix(PREFIX).and_then(|r| r.split_once('-')) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let n = name.rsplit('-').next().and_then(|n| n.parse::<u32>().ok());
            if let Some(n) = n {
                let _ = ip(["link", "del", &format!("{}h", if_tag(pid, n))]);
            }
            let _ = ip(["netns", "del", name]);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn subnets_are_private_and_distinct_per_namespace() {
        let a = free_subnet(1234, 0);
        let b = free_subnet(1234, 1);
        assert_ne!(a, b);
        for (host, ns) in [a, b] {
            assert!(host.is_private() && ns.is_private());
            assert_eq!(host.octets()[..2], NET);
            assert_eq!(host.octets()[3] % 4, 1);
            assert_eq!(u32::from(ns), u32::from(host) + 1);
        }
    }

    /// `bash -c 'exec 3<>/dev/tcp/…'` inside the namespace, given `secs` at most: its exit code
    /// (124: it hung).
    fn connect_from_inside(netns: &Netns, to: std::net::SocketAddr, secs: u32) -> Option<i32> {
        let script = format!("exec 3<>/dev/tcp/{}/{}", to.ip(), to.port());
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            netns.name(),
            "timeout",
            &secs.to_string(),
            "bash",
            "-c",
        ])
        .arg(script)
        .stderr(Stdio::null());
        cmd.status().ok()?.code()
    }

    #[test]
    fn the_link_carries_then_is_cut_two_ways_and_comes_back() {
        let Some(netns) = Netns::create().unwrap() else {
            return;
        };
        let listener = std::net::TcpListener::bind((netns.host_addr(), 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(
            connect_from_inside(&netns, addr, 5),
            Some(0),
            "the link carries"
        );
        // The car's side down: refused at once, not hung.
        netns.cut_car_side().unwrap();
        let code = connect_from_inside(&netns, addr, 5);
        assert!(
            code.is_some_and(|c| c != 0 && c != 124),
            "unreachable at once: {code:?}"
        );
        netns.restore_car_side().unwrap();
        assert_eq!(connect_from_inside(&netns, addr, 5), Some(0), "restored");
        // The host's side down: packets vanish, the connection attempt hangs.
        netns.cut().unwrap();
        assert_eq!(connect_from_inside(&netns, addr, 2), Some(124), "hangs");
        netns.restore().unwrap();
        assert_eq!(connect_from_inside(&netns, addr, 5), Some(0), "restored");
        let name = netns.name().to_owned();
        drop(netns);
        assert!(
            !ip_output(&["netns", "list"]).contains(&name),
            "removed on drop"
        );
    }

    #[test]
    fn interface_names_fit_the_kernel() {
        // Linux's largest pid_max is 2^22.
        let longest = format!("{}h", if_tag(1 << 22, u32::MAX));
        assert!(longest.len() <= 15, "{longest}");
        assert_ne!(if_tag(7, 1), if_tag(7, 2));
    }
}
