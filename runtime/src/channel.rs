//! The supervisor ↔ sandbox channel: one `SOCK_SEQPACKET` socketpair, so every message is a
//! single atomic datagram even when several processes (stage 1, init, the payload child) write
//! to the same end, and a peer that dies shows up as end-of-file rather than a hang.
//!
//! Messages are tiny and fixed in shape: a tag byte, then a 4-byte little-endian integer, then
//! optional UTF-8 text. Parsing is total: anything else is [`Msg::Garbled`].

use nix::errno::Errno;
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use std::os::fd::{AsRawFd, OwnedFd};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Stage 1 has created (or joined) the user namespace: write its id maps.
    UsernsReady,
    /// Supervisor: maps written (and, on cgroup v1, stage 1 placed in the cgroup).
    MapsWritten,
    /// Stage 1: pid (in the supervisor's pid namespace) of stage 2, the sandbox's pid 1.
    Stage2(i32),
    /// Stage 2: sandbox ready (mounts, hostname, init's privileges dropped).
    SetupDone,
    /// Any stage: setup failed; the integer is a [`FailKind`].
    SetupFailed(FailKind, String),
    /// Supervisor: start the payload.
    Go,
    /// The payload child could not execve (errno) — the command, not the sandbox, is wrong.
    ExecFailed(i32, String),
    /// Init: the payload exited with this code.
    Exited(i32),
    /// Init: the payload was killed by this signal.
    Signaled(i32),
    Garbled,
}

/// Who is to blame for a setup failure: decides the exit class the launcher reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// The request was wrong (e.g. work dir missing, cwd not accessible as the payload user).
    Request = 1,
    /// The machine could not do it (mount, namespace, cgroup failures).
    System = 2,
}

const MAX: usize = 4096;

impl Msg {
    fn encode(&self) -> Vec<u8> {
        let (tag, n, text): (u8, i32, &str) = match self {
            Msg::UsernsReady => (1, 0, ""),
            Msg::MapsWritten => (2, 0, ""),
            Msg::Stage2(p) => (3, *p, ""),
            Msg::SetupDone => (4, 0, ""),
            Msg::SetupFailed(k, t) => (5, *k as i32, t),
            Msg::Go => (6, 0, ""),
            Msg::ExecFailed(e, t) => (7, *e, t),
            Msg::Exited(c) => (8, *c, ""),
            Msg::Signaled(s) => (9, *s, ""),
            Msg::Garbled => (0, 0, ""),
        };
        let mut v = Vec::with_capacity(5 + text.len());
        v.push(tag);
        v.extend_from_slice(&n.to_le_bytes());
        // Truncate on a char boundary so the receiver always gets valid UTF-8.
        let mut end = text.len().min(MAX - 5);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        v.extend_from_slice(&text.as_bytes()[..end]);
        v
    }

    fn decode(b: &[u8]) -> Msg {
        if b.len() < 5 {
            return Msg::Garbled;
        }
        let n = i32::from_le_bytes([b[1], b[2], b[3], b[4]]);
        let text = || String::from_utf8_lossy(&b[5..]).into_owned();
        match b[0] {
            1 => Msg::UsernsReady,
            2 => Msg::MapsWritten,
            3 => Msg::Stage2(n),
            4 => Msg::SetupDone,
            5 => Msg::SetupFailed(
                if n == 1 {
                    FailKind::Request
                } else {
                    FailKind::System
                },
                text(),
            ),
            6 => Msg::Go,
            7 => Msg::ExecFailed(n, text()),
            8 => Msg::Exited(n),
            9 => Msg::Signaled(n),
            _ => Msg::Garbled,
        }
    }
}

/// One end of the channel.
pub struct Channel(pub OwnedFd);

impl Channel {
    /// (supervisor end, sandbox end), both close-on-exec: the payload never inherits either.
    pub fn pair() -> Result<(Channel, Channel), Errno> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel(a), Channel(b)))
    }

    pub fn send(&self, m: &Msg) -> Result<(), Errno> {
        let buf = m.encode();
        loop {
            match send(self.0.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL) {
                Err(Errno::EINTR) => continue,
                r => return r.map(drop),
            }
        }
    }

    /// Next message; `None` when every peer has closed its end (they all died or exec'd).
    pub fn recv(&self) -> Result<Option<Msg>, Errno> {
        let mut buf = [0u8; MAX];
        loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
                Ok(0) => return Ok(None),
                Ok(n) => return Ok(Some(Msg::decode(&buf[..n]))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_between_ends() {
        let (a, b) = Channel::pair().unwrap();
        let all = [
            Msg::UsernsReady,
            Msg::MapsWritten,
            Msg::Stage2(4242),
            Msg::SetupDone,
            Msg::SetupFailed(
                FailKind::Request,
                "cwd /nope: No such file or directory".into(),
            ),
            Msg::SetupFailed(FailKind::System, "mount proc".into()),
            Msg::Go,
            Msg::ExecFailed(2, "/bin/nope".into()),
            Msg::Exited(-1),
            Msg::Signaled(9),
        ];
        for m in &all {
            a.send(m).unwrap();
            assert_eq!(b.recv().unwrap().as_ref(), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().unwrap(), None, "closed peer reads as end-of-file");
    }

    #[test]
    fn garbage_and_long_text_are_safe() {
        assert_eq!(Msg::decode(&[3, 1]), Msg::Garbled);
        assert_eq!(Msg::decode(&[200, 0, 0, 0, 0]), Msg::Garbled);
        let long = "é".repeat(5000);
        let enc = Msg::ExecFailed(1, long).encode();
        assert!(enc.len() <= MAX);
        match Msg::decode(&enc) {
            Msg::ExecFailed(1, t) => assert!(t.chars().all(|c| c == 'é')),
            m => panic!("{m:?}"),
        }
    }
}
