//! Each probe kind against real peers: in-process HTTP(S)/TCP servers, dnsmasq, ICMP to
//! loopback and to a host in a namespace the test creates and then cuts.

use std::time::{Duration, Instant};

use thongsuot::probe::{self, FailureKind, Probers};

use crate::support::*;

#[tokio::test]
async fn http_checks_status_body_and_json() {
    let s = HttpServer::start().await;
    let ok = run(&target(&format!("kind = \"http\"\nurl = \"{}\"\nbody_contains = \"ok\"", s.url("/ok")))).await;
    assert!(ok.ok(), "{ok:?}");
    assert!(ok.phases.get(probe::Phase::Processing).is_some() && ok.phases.get(probe::Phase::Transfer).is_some());

    let o = run(&target(&format!("kind = \"http\"\nurl = \"{}\"", s.url("/fail")))).await;
    assert_eq!(kind(&o), Some(FailureKind::Status), "{o:?}");
    assert!(o.failure.as_ref().is_some_and(|f| f.detail.contains("503")), "{o:?}");

    let o = run(&target(&format!("kind = \"http\"\nurl = \"{}\"\nexpect_status = [503]", s.url("/fail")))).await;
    assert!(o.ok(), "expected 503 accepted: {o:?}");

    let o = run(&target(&format!("kind = \"http\"\nurl = \"{}\"\nbody_contains = \"nope\"", s.url("/ok")))).await;
    assert_eq!(kind(&o), Some(FailureKind::Body));

    let o = run(&target(&format!("kind = \"http\"\nurl = \"{}\"\nbody_regex = \"^o.\\\\n$\"", s.url("/ok")))).await;
    assert!(o.ok(), "{o:?}");

    let json = |ptr: &str, eq: &str| {
        target(&format!("kind = \"http\"\nurl = \"{}\"\njson_pointer = \"{ptr}\"\njson_equals = {eq}", s.url("/json")))
    };
    assert!(run(&json("/data/status", "\"DELIVERED\"")).await.ok());
    assert!(run(&json("/data/code", "200")).await.ok());
    assert!(run(&json("/data/code", "\"200\"")).await.ok());
    let o = run(&json("/data/status", "\"LOST\"")).await;
    assert_eq!(kind(&o), Some(FailureKind::Body));
    assert!(o.failure.as_ref().is_some_and(|f| f.detail.contains("DELIVERED")), "{o:?}");
    let o = run(&json("/data/missing", "1")).await;
    assert_eq!(kind(&o), Some(FailureKind::Body));
    let o = run(&target(&format!("kind = \"http\"\nurl = \"{}\"\njson_pointer = \"/a\"", s.url("/not-json")))).await;
    assert!(o.failure.as_ref().is_some_and(|f| f.detail.contains("not JSON")), "{o:?}");

    // Redirects are followed by default, and can be refused.
    assert!(run(&target(&format!("kind = \"http\"\nurl = \"{}\"", s.url("/redirect")))).await.ok());
    let o = run(&target(&format!("kind = \"http\"\nurl = \"{}\"\nfollow_redirects = false", s.url("/redirect")))).await;
    assert_eq!(kind(&o), Some(FailureKind::Status));
}

/// Plain `http://` goes through our own HTTP/1.1 exchange (src/probe/http1.rs): what the server
/// sees, redirects, and a redirect to `https://` handed over to reqwest.
#[tokio::test]
async fn http_plain_requests_carry_method_headers_body_and_follow_redirects() {
    let s = HttpServer::start().await;
    let keys = format!(
        "kind = \"http\"\nurl = \"{}\"\nmethod = \"POST\"\nbody = \"sbd=0123\"\nheaders = {{ \"X-Exam\" = \"thpt\" }}\nbody_contains = \"POST host={} ua=thongsuot/\"",
        s.url("/echo"),
        s.addr
    );
    let o = run(&target(&keys)).await;
    assert!(o.ok(), "{o:?}");
    let o = run(&target(&format!(
        "kind = \"http\"\nurl = \"{}\"\nmethod = \"POST\"\nbody = \"sbd=0123\"\nheaders = {{ \"X-Exam\" = \"thpt\" }}\nbody_regex = \"x-exam=thpt connection=close body=sbd=0123$\"",
        s.url("/echo?q=1")
    )))
    .await;
    assert!(o.ok(), "{o:?}");
    // 303 after a POST: the next request is a GET without the body.
    let o = run(&target(&format!(
        "kind = \"http\"\nurl = \"{}\"\nmethod = \"POST\"\nbody = \"x\"\nbody_regex = \"^GET .*body=$\"",
        s.url("/form")
    )))
    .await;
    assert!(o.ok(), "{o:?}");
    // A redirect loop ends after ten hops, as one failed probe.
    let o = run(&target(&format!("kind = \"http\"\nurl = \"{}\"", s.url("/loop")))).await;
    assert_eq!(kind(&o), Some(FailureKind::Protocol), "{o:?}");
    assert!(o.failure.as_ref().is_some_and(|f| f.detail.contains("too many redirects")), "{o:?}");

    // http:// -> https://: reqwest takes over, with the target's TLS settings.
    let tls = HttpsServer::start().await;
    let app = axum::Router::new().route(
        "/",
        axum::routing::get({
            let to = tls.url("/json");
            move || async move { axum::response::Redirect::permanent(&to) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let o = run(&target(&format!(
        "kind = \"http\"\nurl = \"http://{addr}/\"\nca_file = \"{}\"\nbody_contains = \"DELIVERED\"",
        tls.ca_file.display()
    )))
    .await;
    assert!(o.ok(), "{o:?}");
    let o = run(&target(&format!("kind = \"http\"\nurl = \"http://{addr}/\""))).await;
    assert_eq!(kind(&o), Some(FailureKind::Tls), "self-signed without its CA: {o:?}");
    server.abort();
}

#[tokio::test]
async fn http_hostile_and_dead_servers_cost_one_bounded_probe() {
    let s = HttpServer::start().await;
    // A server that never answers: the probe ends at its timeout, not later.
    let t = target(&format!("kind = \"http\"\nurl = \"{}\"\ntimeout = \"1s\"", s.url("/slow")));
    let start = Instant::now();
    let o = run(&t).await;
    assert_eq!(kind(&o), Some(FailureKind::Timeout), "{o:?}");
    assert!(start.elapsed() < Duration::from_secs(4), "took {:?}", start.elapsed());

    // An endless body: cut at max_body_bytes.
    let t = target(&format!("kind = \"http\"\nurl = \"{}\"\nmax_body_bytes = 100000", s.url("/endless")));
    let o = run(&t).await;
    assert_eq!(kind(&o), Some(FailureKind::TooLarge), "{o:?}");

    // Not HTTP at all: one protocol failure, with what was wrong.
    let garbage = TcpServer::start(Some("SSH-2.0-OpenSSH_9.2\r\n\r\n")).await;
    let o = run(&target(&format!("kind = \"http\"\nurl = \"http://{}/\"\ntimeout = \"2s\"", garbage.addr))).await;
    assert_eq!(kind(&o), Some(FailureKind::Protocol), "{o:?}");

    // Nobody listening.
    let port = free_port();
    let o = run(&target(&format!("kind = \"http\"\nurl = \"http://127.0.0.1:{port}/\""))).await;
    assert_eq!(kind(&o), Some(FailureKind::Refused), "{o:?}");
}

#[tokio::test]
async fn https_verifies_against_ca_file() {
    let s = HttpsServer::start().await;
    let ca = s.ca_file.display().to_string();
    let o = run(&target(&format!("kind = \"http\"\nurl = \"{}\"\nca_file = \"{ca}\"", s.url("/ok")))).await;
    assert!(o.ok(), "{o:?}");

    // Without the CA the self-signed certificate is refused, with a tls reason.
    let o = run(&target(&format!("kind = \"http\"\nurl = \"{}\"", s.url("/ok")))).await;
    assert_eq!(kind(&o), Some(FailureKind::Tls), "{o:?}");

    let o = run(&target(&format!("kind = \"http\"\nurl = \"{}\"\ntls_verify = false", s.url("/ok")))).await;
    assert!(o.ok(), "{o:?}");
}

#[tokio::test]
async fn tcp_connect_and_banner() {
    let s = TcpServer::start(Some("220 smsc ready\r\n")).await;
    let o = run(&target(&format!("kind = \"tcp\"\naddress = \"{}\"", s.addr))).await;
    assert!(o.ok(), "{o:?}");
    assert!(o.phases.get(probe::Phase::Connect).is_some());

    let o = run(&target(&format!("kind = \"tcp\"\naddress = \"{}\"\nexpect = \"220 smsc\"", s.addr))).await;
    assert!(o.ok(), "{o:?}");

    let o =
        run(&target(&format!("kind = \"tcp\"\naddress = \"{}\"\nexpect = \"+OK\"\ntimeout = \"1s\"", s.addr))).await;
    assert!(matches!(kind(&o), Some(FailureKind::Timeout) | Some(FailureKind::Body)), "{o:?}");

    // A silent peer: connect succeeds, the banner never comes, one bounded timeout.
    let silent = TcpServer::start(None).await;
    let start = Instant::now();
    let o = run(&target(&format!("kind = \"tcp\"\naddress = \"{}\"\nexpect = \"220\"\ntimeout = \"1s\"", silent.addr)))
        .await;
    assert_eq!(kind(&o), Some(FailureKind::Timeout), "{o:?}");
    assert!(start.elapsed() < Duration::from_secs(3));

    let port = free_port();
    let o = run(&target(&format!("kind = \"tcp\"\naddress = \"127.0.0.1:{port}\""))).await;
    assert_eq!(kind(&o), Some(FailureKind::Refused), "{o:?}");

    // Bound to a source address (a per-carrier uplink): the server sees 127.0.0.2, not 127.0.0.1.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let laddr = listener.local_addr().expect("addr");
    let peer = tokio::spawn(async move { listener.accept().await.map(|(_, p)| p.ip()) });
    let o = run(&target(&format!("kind = \"tcp\"\naddress = \"{laddr}\"\nsource = \"127.0.0.2\""))).await;
    assert!(o.ok(), "{o:?}");
    assert_eq!(peer.await.expect("join").expect("accept").to_string(), "127.0.0.2");
    // Bound to a device: `lo` reaches loopback; a device that does not exist is a setup failure.
    if require_root("SO_BINDTODEVICE") {
        let o = run(&target(&format!("kind = \"tcp\"\naddress = \"{}\"\ninterface = \"lo\"", s.addr))).await;
        assert!(o.ok(), "{o:?}");
        let o = run(&target(&format!("kind = \"tcp\"\naddress = \"{}\"\ninterface = \"nosuchdev0\"", s.addr))).await;
        assert!(!o.ok(), "{o:?}");
    }
    // A source address that is not local is a setup failure, not an outage of the target.
    let o = run(&target(&format!("kind = \"tcp\"\naddress = \"{}\"\nsource = \"192.0.2.1\"", s.addr))).await;
    assert_eq!(kind(&o), Some(FailureKind::Setup), "{o:?}");
}

/// A connect the kernel cannot finish in the call (the listener's queue is full, so its first
/// SYN is dropped and sent again a second later) completes through the reactor, and the probe
/// measures the wait.
#[tokio::test]
async fn tcp_connect_finished_later_through_the_reactor() {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    listener.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind");
    // A backlog of 0 holds one connection not yet accepted: the next SYN is dropped.
    listener.listen(0).expect("listen");
    let addr = listener.local_addr().expect("addr").as_socket().expect("inet");
    let first = std::net::TcpStream::connect(addr).expect("the first connection fills the queue");
    let listener: std::net::TcpListener = listener.into();
    // Emptied after 300 ms, before the SYN is sent again; then every connection is accepted.
    let acceptor = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut held = Vec::new();
        for _ in 0..2 {
            match listener.accept() {
                Ok((c, _)) => held.push(c),
                Err(_) => break,
            }
        }
        held.len()
    });
    let o = run(&target(&format!("kind = \"tcp\"\naddress = \"{addr}\"\ntimeout = \"5s\""))).await;
    assert!(o.ok(), "{o:?}");
    let connect = o.phases.get(probe::Phase::Connect).expect("connect measured");
    assert!(connect >= Duration::from_millis(500), "the SYN was dropped once, connect took {connect:?}");
    assert_eq!(acceptor.join().expect("acceptor"), 2, "both connections reached the listener");
    drop(first);
}

#[tokio::test]
async fn dns_against_dnsmasq() {
    let Some((_dnsmasq, addr)) = start_dnsmasq() else {
        return;
    };
    let dns = |extra: &str| target(&format!("kind = \"dns\"\nserver = \"{addr}\"\n{extra}"));

    let o = run(&dns("query = \"thi.example.vn\"\nexpect_answer = [\"127.0.0.9\"]")).await;
    assert!(o.ok(), "{o:?}");
    // dnsmasq forks a child per TCP connection: slow on a loaded machine, so a generous timeout.
    let o =
        run(&dns("query = \"thi.example.vn\"\ntransport = \"tcp\"\ntimeout = \"8s\"\nexpect_answer = [\"127.0.0.9\"]"))
            .await;
    assert!(o.ok(), "tcp: {o:?}");
    let o = run(&dns("query = \"txt.example.vn\"\nrecord = \"TXT\"")).await;
    assert!(o.ok(), "txt: {o:?}");

    let o = run(&dns("query = \"thi.example.vn\"\nexpect_answer = [\"127.0.0.10\"]")).await;
    assert_eq!(kind(&o), Some(FailureKind::Answer), "{o:?}");
    assert!(o.failure.as_ref().is_some_and(|f| f.detail.contains("127.0.0.9")), "{o:?}");

    // No upstream: other names are REFUSED.
    let o = run(&dns("query = \"other.example.org\"")).await;
    assert_eq!(kind(&o), Some(FailureKind::Rcode), "{o:?}");
    assert!(o.failure.as_ref().is_some_and(|f| f.detail.contains("REFUSED")), "{o:?}");
    let o = run(&dns("query = \"other.example.org\"\nexpect_rcode = \"REFUSED\"")).await;
    assert!(o.ok(), "{o:?}");

    // dnsmasq answers NOERROR with no AAAA record for a host it only has an IPv4 address for.
    let o = run(&dns("query = \"v4only.example.vn\"\nrecord = \"AAAA\"")).await;
    assert_eq!(kind(&o), Some(FailureKind::Answer), "{o:?}");
    let o = run(&dns("query = \"v4only.example.vn\"\nrecord = \"AAAA\"\nallow_empty = true")).await;
    assert!(o.ok(), "{o:?}");

    // A server that is not there: ICMP port unreachable on loopback is a refusal.
    let dead = free_udp_port();
    let o = run(&target(&format!(
        "kind = \"dns\"\nserver = \"127.0.0.1:{dead}\"\nquery = \"thi.example.vn\"\ntimeout = \"1s\""
    )))
    .await;
    assert!(matches!(kind(&o), Some(FailureKind::Refused) | Some(FailureKind::Timeout)), "{o:?}");
}

#[tokio::test]
async fn icmp_loopback_gives_loss_and_rtt() {
    if !require_root("ICMP raw sockets") {
        return;
    }
    let o = run(&target("kind = \"icmp\"\nhost = \"127.0.0.1\"\ncount = 3\nspacing = \"50ms\"")).await;
    assert!(o.ok(), "{o:?}");
    let echo = o.echo.expect("echo stats");
    assert_eq!((echo.sent, echo.received), (3, 3));
    assert_eq!(echo.loss_ratio(), 0.0);
    assert!(echo.rtt_avg.is_some_and(|r| r < Duration::from_millis(500)));

    // IPv6 through its own shared socket.
    let o = run(&target("kind = \"icmp\"\nhost = \"::1\"\ncount = 2\nspacing = \"20ms\"")).await;
    assert!(o.ok(), "ICMPv6 to ::1: {o:?}");
    assert_eq!(o.echo.map(|e| e.received), Some(2));

    // Two targets on one shared socket, pinging concurrently, do not steal replies.
    let probers = Probers::new();
    let a = target("kind = \"icmp\"\nhost = \"127.0.0.1\"\ncount = 5\nspacing = \"10ms\"");
    let b = target("kind = \"icmp\"\nhost = \"127.0.0.3\"\ncount = 5\nspacing = \"10ms\"");
    let (oa, ob) = tokio::join!(run_with(&a, &probers), run_with(&b, &probers));
    assert_eq!(oa.echo.map(|e| e.received), Some(5), "{oa:?}");
    assert_eq!(ob.echo.map(|e| e.received), Some(5), "{ob:?}");
}

#[tokio::test]
async fn icmp_to_namespace_host_then_link_cut() {
    if !require_root("network namespaces") || !require_tool("ip", "iproute2") {
        return;
    }
    let ns = Netns::create("icmp", 7);
    let t = target(&format!("kind = \"icmp\"\nhost = \"{}\"\ncount = 2\ntimeout = \"1s\"", ns.ns_ip));
    let probers = Probers::new();
    let o = run_with(&t, &probers).await;
    assert!(o.ok(), "before the cut: {o:?}");

    ns.cut();
    let o = run_with(&t, &probers).await;
    assert!(!o.ok(), "after the cut the host must not answer: {o:?}");
    assert_eq!(o.echo.map(|e| e.loss_ratio()), Some(1.0));

    ns.restore();
    // The link takes a moment to come back up; bounded retries.
    let mut back = false;
    for _ in 0..10 {
        if run_with(&t, &probers).await.ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(back, "host did not answer again after the link was restored");
}

#[tokio::test]
async fn tls_handshake_and_certificate_expiry() {
    let (addr, ca, _dir, task) = tls_server_expiring_in(5).await;
    let base = format!("kind = \"tls\"\naddress = \"localhost:{}\"\nca_file = \"{}\"", addr.port(), ca.display());

    // Five days left against the default 14: a failure with the reason and the date.
    let o = run(&target(&base)).await;
    assert_eq!(kind(&o), Some(FailureKind::CertExpiry), "{o:?}");
    assert!(
        o.failure.as_ref().is_some_and(|f| f.detail.contains("expires in 4.") || f.detail.contains("expires in 5.")),
        "{o:?}"
    );
    let days = (o.cert_expiry.expect("expiry measured") - chrono::Utc::now().timestamp()) as f64 / 86_400.0;
    assert!((4.0..=6.0).contains(&days), "{days} days");
    assert!(o.phases.get(probe::Phase::Tls).is_some());

    let o = run(&target(&format!("{base}\nmin_days_left = 3"))).await;
    assert!(o.ok(), "{o:?}");

    // Without the CA the chain does not verify; with tls_verify = false expiry is still measured.
    let o = run(&target(&format!("kind = \"tls\"\naddress = \"localhost:{}\"", addr.port()))).await;
    assert_eq!(kind(&o), Some(FailureKind::Tls), "{o:?}");
    let o = run(&target(&format!(
        "kind = \"tls\"\naddress = \"localhost:{}\"\ntls_verify = false\nmin_days_left = 1",
        addr.port()
    )))
    .await;
    assert!(o.ok() && o.cert_expiry.is_some(), "{o:?}");

    // A plain TCP listener is not TLS.
    let plain = TcpServer::start(Some("220 not tls\r\n")).await;
    let o = run(&target(&format!(
        "kind = \"tls\"\naddress = \"{}\"\nserver_name = \"localhost\"\ntimeout = \"1s\"",
        plain.addr
    )))
    .await;
    assert!(matches!(kind(&o), Some(FailureKind::Tls) | Some(FailureKind::Timeout)), "{o:?}");
    task.abort();

    // HTTPS targets report their certificate's expiry too.
    let s = HttpsServer::start().await;
    let o =
        run(&target(&format!("kind = \"http\"\nurl = \"{}\"\nca_file = \"{}\"", s.url("/ok"), s.ca_file.display())))
            .await;
    assert!(o.ok() && o.cert_expiry.is_some(), "{o:?}");
}

#[tokio::test]
async fn sip_options_against_kamailio() {
    let Some((_k, port, _dir)) = start_kamailio(200, "OK") else { return };
    for transport in ["udp", "tcp"] {
        let o =
            run(&target(&format!("kind = \"sip\"\naddress = \"127.0.0.1:{port}\"\ntransport = \"{transport}\""))).await;
        assert!(o.ok(), "{transport}: {o:?}");
        assert!(o.phases.get(probe::Phase::Processing).is_some());
    }
    // A server answering 503: a failure with the SIP status, unless any response is enough.
    let Some((_k503, p503, _d503)) = start_kamailio(503, "Service Unavailable") else { return };
    let o = run(&target(&format!("kind = \"sip\"\naddress = \"127.0.0.1:{p503}\""))).await;
    assert_eq!(kind(&o), Some(FailureKind::Status), "{o:?}");
    assert!(o.failure.as_ref().is_some_and(|f| f.detail == "SIP 503 Service Unavailable"), "{o:?}");
    let o = run(&target(&format!("kind = \"sip\"\naddress = \"127.0.0.1:{p503}\"\nany_response = true"))).await;
    assert!(o.ok(), "{o:?}");
    let o = run(&target(&format!(
        "kind = \"sip\"\naddress = \"127.0.0.1:{p503}\"\nexpect_status = [503]\ntransport = \"tcp\""
    )))
    .await;
    assert!(o.ok(), "{o:?}");

    // A dead port: UDP gets ICMP port unreachable (refused); TCP is refused.
    let dead = free_udp_port();
    let o = run(&target(&format!("kind = \"sip\"\naddress = \"127.0.0.1:{dead}\"\ntimeout = \"2s\""))).await;
    assert!(matches!(kind(&o), Some(FailureKind::Refused) | Some(FailureKind::Timeout)), "{o:?}");
    let o = run(&target(&format!("kind = \"sip\"\naddress = \"127.0.0.1:{dead}\"\ntransport = \"tcp\""))).await;
    assert_eq!(kind(&o), Some(FailureKind::Refused), "{o:?}");

    // A silent UDP peer: retransmitted on T1 timers, then one bounded timeout.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("addr");
    let counter = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        let mut n = 0;
        while tokio::time::timeout(Duration::from_secs(3), silent.recv(&mut buf)).await.is_ok_and(|r| r.is_ok()) {
            n += 1;
        }
        n
    });
    let start = Instant::now();
    let o = run(&target(&format!("kind = \"sip\"\naddress = \"{addr}\"\ntimeout = \"2s\""))).await;
    assert_eq!(kind(&o), Some(FailureKind::Timeout), "{o:?}");
    assert!(start.elapsed() < Duration::from_secs(4));
    let sent = counter.await.expect("counter");
    assert!((2..=4).contains(&sent), "{sent} transmissions in 2 s (T1 = 500 ms: at 0, 0.5, 1.5 s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_cost_one_bounded_probe() {
    use tokio::io::AsyncWriteExt;
    // A DNS "server" answering garbage.
    let garbage = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let gaddr = garbage.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((_, peer)) = garbage.recv_from(&mut buf).await {
            let _ = garbage.send_to(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02], peer).await;
        }
    });
    let o =
        run(&target(&format!("kind = \"dns\"\nserver = \"{gaddr}\"\nquery = \"thi.example.vn\"\ntimeout = \"1s\"")))
            .await;
    assert_eq!(kind(&o), Some(FailureKind::Protocol), "{o:?}");

    // Accepts TCP, never speaks: a TLS handshake stall and a silent HTTP server.
    for keys in [
        "kind = \"tls\"\naddress = \"{addr}\"\nserver_name = \"localhost\"\ntimeout = \"1s\"",
        "kind = \"http\"\nurl = \"http://{addr}/\"\ntimeout = \"1s\"",
    ] {
        let silent = TcpServer::start(None).await;
        let keys = keys.replace("{addr}", &silent.addr.to_string());
        let start = Instant::now();
        let o = run(&target(&keys)).await;
        assert_eq!(kind(&o), Some(FailureKind::Timeout), "{keys}: {o:?}");
        assert!(start.elapsed() < Duration::from_secs(3), "{keys}: took {:?}", start.elapsed());
    }

    // Slowloris: a status line, then one header byte every 200 ms, forever.
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let saddr = slow.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = slow.accept().await {
            tokio::spawn(async move {
                // Read the request first, as a real server does, then dribble the answer.
                let mut req = [0u8; 1024];
                let _ = tokio::io::AsyncReadExt::read(&mut s, &mut req).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ").await;
                for _ in 0..100 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if s.write_all(b"a").await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let start = Instant::now();
    let o = run(&target(&format!("kind = \"http\"\nurl = \"http://{saddr}/\"\ntimeout = \"1s\""))).await;
    assert_eq!(kind(&o), Some(FailureKind::Timeout), "{o:?}");
    assert!(start.elapsed() < Duration::from_secs(3));

    // Accept and close at once.
    let rude = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let raddr = rude.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = rude.accept().await {
            drop(s);
        }
    });
    let o = run(&target(&format!("kind = \"http\"\nurl = \"http://{raddr}/\"\ntimeout = \"1s\""))).await;
    assert!(matches!(kind(&o), Some(FailureKind::Reset) | Some(FailureKind::Protocol)), "{o:?}");
    let o =
        run(&target(&format!("kind = \"sip\"\naddress = \"{raddr}\"\ntransport = \"tcp\"\ntimeout = \"1s\""))).await;
    assert!(matches!(kind(&o), Some(FailureKind::Reset) | Some(FailureKind::Io)), "{o:?}");
}
