//! A real `redis-server` (Debian) for the tests: started on a loopback port in a temporary
//! directory (without persistence unless asked), stopped when dropped.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::require;

/// A running redis-server.
pub struct Redis {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    bin: String,
    dir: tempfile::TempDir,
    persistent: bool,
}

impl Redis {
    /// `redis://127.0.0.1:{port}/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops the server (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }

    /// Starts it again on the same port (empty unless started by [`start_persistent`]).
    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(spawn(
            &self.bin,
            self.port,
            self.dir.path(),
            self.persistent,
        ));
        wait_ready(self.port);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(bin: &str, port: u16, dir: &std::path::Path, persistent: bool) -> Child {
    let aof: &[&str] = if persistent {
        // Every write fsynced to the append-only file: a kill -9 keeps all of it.
        &["--appendonly", "yes", "--appendfsync", "always"]
    } else {
        &["--appendonly", "no"]
    };
    Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--protected-mode", "yes"])
        .args(aof)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts")
}

fn wait_ready(port: u16) {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.set_read_timeout(Some(Duration::from_secs(1))).ok();
            if s.write_all(b"PING\r\n").is_ok() {
                let mut buf = [0u8; 7];
                if s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server did not answer PING on port {port}");
}

/// The binary, or `None` (skipped loudly; under CI=true the test fails).
pub fn find_binary() -> Option<String> {
    require::program("redis-server", "apt-get install redis-server")
        .map(|p| p.display().to_string())
}

/// Starts redis-server on a free loopback port and waits for PING.
pub fn start(bin: &str) -> Redis {
    start_with(bin, false)
}

/// Like [`start`], with an append-only file fsynced on every write: a restart keeps the data.
pub fn start_persistent(bin: &str) -> Redis {
    start_with(bin, true)
}

fn start_with(bin: &str, persistent: bool) -> Redis {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let child = spawn(bin, port, dir.path(), persistent);
    wait_ready(port);
    Redis {
        child: Some(child),
        port,
        bin: bin.to_owned(),
        dir,
        persistent,
    }
}
