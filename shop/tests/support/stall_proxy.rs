//! A TCP proxy in front of the test MariaDB that answers one chosen statement late: the statement
//! reaches the server and runs, its answer arrives `stall` later. That is what a Galera stall
//! does to a client (causal reads hold BEGIN and SELECT, a blocked cluster holds COMMIT), and a
//! connection cut right after the server committed looks the same to the shop.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct StallProxy {
    pub port: u16,
    /// The statement (its first bytes) whose answer the next matching connection holds back.
    next: Arc<Mutex<Option<&'static [u8]>>>,
}

impl StallProxy {
    /// A proxy to the server of `server_url` (`mysql://…@host:port/…`) on 127.0.0.1.
    pub async fn start(server_url: &str, stall: Duration) -> Self {
        let u = url::Url::parse(server_url).expect("database url");
        let upstream = (u.host_str().unwrap_or("127.0.0.1").to_string(), u.port().unwrap_or(3306));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let next: Arc<Mutex<Option<&'static [u8]>>> = Arc::new(Mutex::new(None));
        let armed = next.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect((upstream.0.as_str(), upstream.1)).await
                else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                // this connection's answers are held until this instant
                let hold = Arc::new(Mutex::new(None::<tokio::time::Instant>));
                let (armed, hold_w) = (armed.clone(), hold.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let chunk = &buf[..n];
                        if let Ok(mut want) = armed.lock() {
                            // a COM_QUERY (0x03) whose text starts with the armed statement
                            let hit = want.is_some_and(|w| {
                                chunk.windows(w.len() + 1).any(|x| x[0] == 0x03 && &x[1..] == w)
                            });
                            if hit {
                                *want = None;
                                if let Ok(mut h) = hold_w.lock() {
                                    *h = Some(tokio::time::Instant::now() + stall);
                                }
                            }
                        }
                        if sw.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let until = hold.lock().ok().and_then(|h| *h);
                        if let Some(until) = until {
                            tokio::time::sleep_until(until).await;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        StallProxy { port, next }
    }

    /// Hold back the answer to the next `statement` (e.g. `b"COMMIT"`) any connection sends.
    pub fn stall_next(&self, statement: &'static [u8]) {
        if let Ok(mut n) = self.next.lock() {
            *n = Some(statement);
        }
    }
}
