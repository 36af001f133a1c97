//! In a really forked child: `close_inherited`, and a TLS connection with
//! the roots the parent loaded.

use super::tls::{
    accept_tls, https_client, pki, serve_tls_connections, system_store_loads, with_ca, Pki,
};
use super::*;

#[test]
fn open_count_follows_the_keep_alive_connection() {
    let (addr, server) = serve_one(|mut conn| {
        respond(&mut conn, ok("one").as_bytes());
        sees_eof(&mut conn)
    });
    let (mut http, sockets) = client(addr);
    assert_eq!(
        sockets.open_count(),
        0,
        "no connection before the first request"
    );
    http.request(&get("/a")).unwrap();
    assert_eq!(sockets.open_count(), 1);
    http.disconnect();
    assert_eq!(sockets.open_count(), 0);
    assert!(server.join().unwrap(), "disconnect closes the socket");
}

/// How a forked child lets go of the parent's sockets.
#[derive(Clone, Copy)]
enum Closer {
    /// `close_inherited` on the client's registry (a client's first use).
    Registry,
    /// `close_every_inherited`, as the fork handler does.
    Handler,
}

/// Forks. The child closes the registry's fds as `closer` says, checks that
/// each is closed and reports, making raw system calls only. Returns how
/// many the child closed (the handler may close other tests' enlisted
/// sockets too) and whether all registered fds were closed in it.
fn close_in_forked_child(sockets: &SocketRegistry, closer: Closer) -> (u8, bool) {
    let fds = sockets.registered_fds();
    let report = in_forked_child(LIMIT, || {
        // SAFETY: this is the forked child and the registry's fds are the
        // parent's client's sockets, copied by the fork.
        let closed = unsafe {
            match closer {
                Closer::Registry => sockets.close_inherited(),
                Closer::Handler => close_every_inherited(),
            }
        };
        // SAFETY: F_GETFD on any number is harmless; -1 means closed.
        let all_closed = fds
            .iter()
            .all(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1);
        [closed as u8, u8::from(all_closed)]
    });
    let [closed, all_closed] = report.expect("the child reported within 5 s");
    (closed, all_closed == 1)
}

fn the_parent_keeps_its_connection(pki: Option<&Pki>, closer: Closer) {
    let config = pki.map(|p| Arc::clone(&p.server));
    // Two requests on one connection: a FIN or close_notify in between
    // would end the first connection.
    let (addr, server) = serve(move |l| {
        let both = match &config {
            Some(config) => answer_each(&mut accept_tls(&l, config), &["one", "two"]),
            None => answer_each(&mut l.accept(), &["one", "two"]),
        };
        both && l.try_accept(Duration::from_millis(100)).is_none()
    });
    let (scheme, tls) = match pki {
        Some(p) => ("https", with_ca(p)),
        None => ("http", TlsOptions::default()),
    };
    let url = format!("{scheme}://{addr}/api");
    let (mut http, sockets) = match closer {
        Closer::Registry => client_with(&url, &tls, TIMEOUT, LARGE),
        Closer::Handler => client_in(SocketRegistry::enlisted(), &url, &tls, TIMEOUT, LARGE),
    };
    assert_eq!(get_text(&mut http, "/a"), "one");
    assert_eq!(sockets.open_count(), 1);

    let (closed, all_closed) = close_in_forked_child(&sockets, closer);
    match closer {
        Closer::Registry => assert_eq!(closed, 1, "the child closed the inherited socket"),
        Closer::Handler => assert!(closed >= 1, "the child closed the inherited socket"),
    }
    assert!(all_closed, "the fd is closed in the child");
    assert_eq!(sockets.open_count(), 1, "the parent's registry is its own");

    assert_eq!(get_text(&mut http, "/b"), "two");
    drop(http);
    assert!(
        server.join().unwrap(),
        "the second request came on the first connection, undisturbed"
    );
}

#[test]
fn close_inherited_in_a_forked_child_leaves_the_parent_connections_alone() {
    the_parent_keeps_its_connection(None, Closer::Registry);
    the_parent_keeps_its_connection(Some(&pki(&["127.0.0.1"])), Closer::Registry);
}

#[test]
fn the_fork_handler_closes_enlisted_sockets_and_leaves_the_parent_connections_alone() {
    the_parent_keeps_its_connection(None, Closer::Handler);
    the_parent_keeps_its_connection(Some(&pki(&["127.0.0.1"])), Closer::Handler);
}

#[test]
fn a_forked_child_connects_with_the_roots_it_inherited() {
    let pki = pki(&["127.0.0.1"]);
    let (addr, server) = serve_tls_connections(Arc::clone(&pki.server), 2);
    let endpoint = Endpoint::parse(&format!("https://{addr}/api")).unwrap();
    let tls = Tls::load(&endpoint, &with_ca(&pki)).unwrap();
    let parent_loads = system_store_loads();
    // The parent's own connection, as its thread would have made it.
    let mut http = https_client(&endpoint, &tls).unwrap();
    assert_eq!(get_text(&mut http, "/a"), "roots");
    std::fs::remove_file(&pki.ca_file).unwrap();

    // 1: the child's request went through, trusted; 2: it failed; 3: the
    // child read the store again.
    let report = in_forked_child(LIMIT, || {
        let Ok(mut child) = https_client(&endpoint, &tls) else {
            return [2];
        };
        let ok = matches!(child.request(&get("/b")), Ok(r) if body(&r) == "roots");
        // The leaked client and roots belong to a process about to _exit.
        std::mem::forget(child);
        match (ok, system_store_loads() == parent_loads) {
            (true, true) => [1],
            (false, _) => [2],
            (true, false) => [3],
        }
    });
    assert_eq!(
        report,
        Some([1]),
        "1: the child connected with the inherited roots"
    );
    assert_eq!(server.join().unwrap(), 2);
}
