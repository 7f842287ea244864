//! A three-node NATS JetStream cluster of the installed `nats-server`, on free local ports with
//! its storage in a temporary folder, for tests that kill a node under traffic.

use std::time::Duration;

use tokio::process::{Child, Command};

use crate::patience::Patience;

/// One node of the cluster.
pub struct Node {
    /// Its server name (`n1`, `n2`, `n3`), as JetStream reports leaders.
    pub name: String,
    /// Its client URL.
    pub url: String,
    child: Option<Child>,
}

/// A running cluster; its nodes are killed when it is dropped.
pub struct NatsCluster {
    pub nodes: Vec<Node>,
    _storage: tempfile::TempDir,
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NatsCluster {
    /// Starts three nodes routed to each other and waits until JetStream has a meta leader.
    pub async fn start() -> Self {
        let storage = tempfile::tempdir().unwrap();
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes = cluster_ports
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let cluster_name = format!("omni{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        let mut nodes = Vec::new();
        for (i, cluster_port) in cluster_ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let port = free_port();
            let child = Command::new("nats-server")
                .args([
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-n",
                    &name,
                    "-js",
                ])
                .arg("-sd")
                .arg(storage.path().join(&name))
                .args(["--cluster_name", &cluster_name])
                .args(["--cluster", &format!("nats://127.0.0.1:{cluster_port}")])
                .args(["--routes", &routes])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("nats-server is installed");
            nodes.push(Node {
                name,
                url: format!("nats://127.0.0.1:{port}"),
                child: Some(child),
            });
        }
        let cluster = Self {
            nodes,
            _storage: storage,
        };
        // Ready when a three-replica stream can be made (a meta leader and every node's vote).
        let mut patience = Patience::new(Duration::from_secs(30));
        loop {
            let failure = match async_nats::connect(cluster.running_urls().as_slice()).await {
                Ok(client) => {
                    let jetstream = async_nats::jetstream::new(client);
                    let probe = async_nats::jetstream::stream::Config {
                        name: "READINESS_PROBE".into(),
                        subjects: vec!["readiness.probe".into()],
                        num_replicas: 3,
                        ..Default::default()
                    };
                    match jetstream.get_or_create_stream(probe).await {
                        Ok(_) => {
                            let _ = jetstream.delete_stream("READINESS_PROBE").await;
                            return cluster;
                        }
                        Err(error) => error.to_string(),
                    }
                }
                Err(error) => error.to_string(),
            };
            assert!(
                patience.progressing(()),
                "the NATS cluster never became ready: {failure}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every node's client URL, comma-separated, as `NATS_URL` takes them.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|node| node.url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The URLs of the nodes still running.
    pub fn running_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.url.clone())
            .collect()
    }

    /// Kills node `name` with SIGKILL and waits until it is gone.
    pub async fn kill(&mut self, name: &str) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.name == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        if let Some(mut child) = node.child.take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }
}
