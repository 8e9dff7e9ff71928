//! Reading a CRI log file with the options of a request: start at the last N lines,
//! skip lines before `since`, stop after `limitBytes`, prefix timestamps, and with
//! `follow` wait (inotify, with a 1 s re-check) for more until the container stops or
//! the client goes away. Blocking: callers run it on a blocking thread.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use notify::Watcher;

use super::format::{format_timestamp, parse};
use super::{LogOptions, Stream};

const BLOCK: u64 = 4096;
const FLUSH_AT: usize = 32 * 1024;

/// Offset of the start of the last `n` lines of `f` (upstream FindTailLineStartIndex).
pub fn tail_start(f: &mut (impl Read + Seek), n: u64) -> std::io::Result<u64> {
    let size = f.seek(SeekFrom::End(0))?;
    let mut count: u64 = 0;
    let mut right = size;
    let mut left = size;
    let mut buf = Vec::new();
    while right > 0 && count <= n {
        left = right.saturating_sub(BLOCK);
        buf.resize((right - left) as usize, 0);
        f.seek(SeekFrom::Start(left))?;
        f.read_exact(&mut buf)?;
        count += buf.iter().filter(|b| **b == b'\n').count() as u64;
        right = left;
    }
    // `buf` holds the block starting at `left`; drop whole lines until n remain.
    let mut start = 0usize;
    while count > n {
        match buf[start..].iter().position(|b| *b == b'\n') {
            Some(i) => start += i + 1,
            None => break,
        }
        count -= 1;
    }
    Ok(left + start as u64)
}

/// Writes formatted output to the sink, enforcing the byte limit.
struct Output<'a> {
    sink: &'a mut dyn FnMut(Vec<u8>) -> bool,
    buf: Vec<u8>,
    remaining: Option<u64>,
    at_line_start: bool,
    closed: bool,
}

impl Output<'_> {
    /// Returns false once the limit is reached or the sink is gone.
    fn write(&mut self, bytes: &[u8]) -> bool {
        let take = match self.remaining {
            Some(r) => (r as usize).min(bytes.len()),
            None => bytes.len(),
        };
        self.buf.extend_from_slice(&bytes[..take]);
        if let Some(r) = self.remaining.as_mut() {
            *r -= take as u64;
        }
        if self.buf.len() >= FLUSH_AT && !self.flush() {
            return false;
        }
        self.remaining != Some(0)
    }

    fn flush(&mut self) -> bool {
        if !self.buf.is_empty() && !self.closed {
            let chunk = std::mem::take(&mut self.buf);
            self.closed = !(self.sink)(chunk);
        }
        !self.closed
    }
}

/// Handles one file line; false means stop.
fn emit(line: &[u8], opts: &LogOptions, since_ns: Option<i64>, out: &mut Output<'_>) -> bool {
    let Some(msg) = parse(line) else {
        tracing::debug!("skipping a log line that is not in CRI format");
        return true;
    };
    if since_ns.is_some_and(|s| msg.timestamp.timestamp_nanos_opt().unwrap_or(i64::MAX) < s) {
        return true;
    }
    match opts.stream {
        Some(Stream::Stdout) if msg.stream != Stream::Stdout => return true,
        Some(Stream::Stderr) if msg.stream != Stream::Stderr => return true,
        _ => {}
    }
    if opts.timestamps && out.at_line_start {
        let prefix = format!("{} ", format_timestamp(&msg.timestamp));
        if !out.write(prefix.as_bytes()) {
            return false;
        }
    }
    out.at_line_start = !msg.partial;
    out.write(msg.content)
}

/// Callbacks of a follow: whether the container still runs, whether the client left.
pub struct Follow<'a> {
    pub running: &'a dyn Fn() -> bool,
    pub client_gone: &'a dyn Fn() -> bool,
}

/// Read `path` with `opts`, sending output chunks to `sink` (which returns false when
/// the client is gone).
pub fn read_logs(
    path: &Path,
    opts: &LogOptions,
    now_ns: i64,
    follow: &Follow<'_>,
    sink: &mut dyn FnMut(Vec<u8>) -> bool,
) -> std::io::Result<()> {
    let mut file = File::open(path)?;
    let start = match opts.tail_lines {
        Some(n) => tail_start(&mut file, n.max(0) as u64)?,
        None => 0,
    };
    file.seek(SeekFrom::Start(start))?;
    let mut inode = file.metadata()?.ino();
    let mut reader = BufReader::new(file);
    let since_ns = opts.since_ns(now_ns);
    let mut out = Output {
        sink,
        buf: Vec::new(),
        remaining: opts.limit_bytes.map(|l| l.max(0) as u64),
        at_line_start: true,
        closed: false,
    };
    // The watcher lives as long as the loop; events only wake the wait.
    let (tx, rx) = mpsc::channel();
    let mut watcher = None;
    let mut line = Vec::new();
    let mut stopping = false;
    loop {
        let n = reader.read_until(b'\n', &mut line)?;
        if n > 0 && line.ends_with(b"\n") {
            if !emit(&line, opts, since_ns, &mut out) {
                break;
            }
            line.clear();
            continue;
        }
        // End of the data written so far (possibly mid-line).
        if !opts.follow || stopping {
            if !line.is_empty() {
                emit(&line, opts, since_ns, &mut out);
            }
            break;
        }
        if !out.flush() {
            break;
        }
        if watcher.is_none() {
            let tx = tx.clone();
            watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
                let _ = tx.send(());
            })
            .and_then(|mut w| {
                w.watch(path, notify::RecursiveMode::NonRecursive)
                    .map(|_| w)
            })
            .map_err(
                |e| tracing::debug!(error = %e, "cannot watch log file; re-checking every second"),
            )
            .ok();
            // Re-read once: data may have arrived before the watch.
            continue;
        }
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(250))
            }
        }
        while rx.try_recv().is_ok() {}
        if (follow.client_gone)() {
            break;
        }
        if !(follow.running)() {
            // Read what the container wrote before it stopped, then finish.
            stopping = true;
            continue;
        }
        // Rotated: the path now names another file. Finish this one, then switch.
        if let Ok(meta) = std::fs::metadata(path)
            && meta.ino() != inode
        {
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest)?;
            line.extend_from_slice(&rest);
            for l in line.split_inclusive(|b| *b == b'\n') {
                if !emit(l, opts, since_ns, &mut out) {
                    out.flush();
                    return Ok(());
                }
            }
            line.clear();
            let file = File::open(path)?;
            inode = file.metadata()?.ino();
            reader = BufReader::new(file);
            watcher = None;
        }
    }
    out.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::io::Write;

    fn lines(n: usize) -> String {
        (0..n)
            .map(|i| {
                format!(
                    "2024-01-01T00:00:{:02}.000000000Z stdout F line {i}\n",
                    i % 60
                )
            })
            .collect()
    }

    fn read(content: &str, query: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, content).unwrap();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let opts = LogOptions::from_query(&pairs).unwrap();
        let mut got = Vec::new();
        let follow = Follow {
            running: &|| false,
            client_gone: &|| false,
        };
        read_logs(&path, &opts, 1_704_067_230_000_000_000, &follow, &mut |c| {
            got.extend(c);
            true
        })
        .unwrap();
        String::from_utf8(got).unwrap()
    }

    #[test]
    fn tail_offsets() {
        let text = "a\nb\nc\n";
        let mut c = Cursor::new(text.as_bytes());
        assert_eq!(tail_start(&mut c, 2).unwrap(), 2);
        assert_eq!(tail_start(&mut c, 0).unwrap(), 6);
        assert_eq!(tail_start(&mut c, 10).unwrap(), 0);
        assert_eq!(tail_start(&mut c, u64::MAX).unwrap(), 0);
        let big = lines(5000);
        let mut c = Cursor::new(big.as_bytes());
        let off = tail_start(&mut c, 3).unwrap() as usize;
        assert_eq!(big[off..].lines().count(), 3);
    }

    #[test]
    fn options_apply() {
        let text = lines(40);
        assert_eq!(read(&text, "").lines().count(), 40);
        assert_eq!(read(&text, "tailLines=2"), "line 38\nline 39\n");
        assert_eq!(read(&text, "tailLines=0"), "");
        assert_eq!(read(&text, "limitBytes=9"), "line 0\nli");
        assert_eq!(
            read(&text, "tailLines=1&timestamps=true"),
            "2024-01-01T00:00:39.000000000Z line 39\n"
        );
        // "now" is 00:00:30: sinceSeconds=5 keeps 00:00:25 onwards.
        assert_eq!(
            read(&text, "sinceSeconds=5").lines().next(),
            Some("line 25")
        );
        assert_eq!(
            read(&text, "sinceTime=2024-01-01T00:00:38Z"),
            "line 38\nline 39\n"
        );
    }

    #[test]
    fn joins_partial_lines_and_filters_streams() {
        let text = "2024-01-01T00:00:00Z stdout P hel\n2024-01-01T00:00:01Z stdout F lo\n2024-01-01T00:00:02Z stderr F err\nnot cri\n";
        assert_eq!(read(text, ""), "hello\nerr\n");
        assert_eq!(
            read(text, "timestamps=1"),
            "2024-01-01T00:00:00.000000000Z hello\n2024-01-01T00:00:02.000000000Z err\n"
        );
        assert_eq!(read(text, "stream=Stderr"), "err\n");
    }

    #[test]
    fn follow_reads_appended_lines_until_container_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, "2024-01-01T00:00:00Z stdout F first\n").unwrap();
        let writer_path = path.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&writer_path)
                .unwrap();
            f.write_all(b"2024-01-01T00:00:01Z stdout F second\n")
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            stop2.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        let mut got = Vec::new();
        let running = || !stop.load(std::sync::atomic::Ordering::SeqCst);
        let follow = Follow {
            running: &running,
            client_gone: &|| false,
        };
        read_logs(&path, &opts, 0, &follow, &mut |c| {
            got.extend(c);
            true
        })
        .unwrap();
        writer.join().unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), "first\nsecond\n");
    }
}
