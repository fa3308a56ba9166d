//! The Docker Engine API (bollard over the unix socket): find the replicas, restart, signal,
//! create and remove them. Every call is bounded by the configured timeout.

use std::{collections::HashMap, future::Future, time::Duration};

use anyhow::{anyhow, bail, Context};
use bollard::{
    models::{
        ContainerCreateBody, ContainerSummaryStateEnum, EndpointSettings, NetworkConnectRequest,
        NetworkDisconnectRequest, NetworkingConfig,
    },
    query_parameters::{
        CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder,
        ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, RestartContainerOptionsBuilder,
        StopContainerOptionsBuilder,
    },
    Docker,
};

use crate::config::Mode;

pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
const COMPOSE_NUMBER: &str = "com.docker.compose.container-number";
const SWARM_SERVICE: &str = "com.docker.swarm.service.name";
/// Set on the containers the manager creates, so an operator can tell them apart.
pub const CREATED_BY: &str = "org.distshop.created-by";

/// One replica container as Docker sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// Compose's container number (ordering for scale-in).
    pub number: u32,
    /// Its address on a network the manager shares with it.
    pub ip: Option<String>,
    /// Every address it has (Prometheus may reach it on another network than the manager).
    pub ips: Vec<String>,
    /// running, paused, restarting, …
    pub state: String,
    /// healthy, unhealthy, starting, or none
    pub health: Option<String>,
}

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    timeout: Duration,
    /// What to match: compose project + service, or the Swarm service name.
    project: Option<String>,
    service: String,
    swarm: bool,
    /// Networks this manager's own container is on: a replica is reached on one of them.
    my_networks: Vec<String>,
}

async fn bounded<T>(
    timeout: Duration,
    what: &str,
    f: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r.with_context(|| format!("docker: {what}")),
        Err(_) => bail!("docker: {what}: no answer within {timeout:?}"),
    }
}

impl Engine {
    /// Connect to the local socket and find out who we are (our own container's labels and
    /// networks, via our hostname = container id), so the project need not be configured.
    pub async fn connect(mode: &Mode, service: &str, timeout: Duration) -> anyhow::Result<Engine> {
        let docker = Docker::connect_with_local_defaults().context("docker: connect to the local socket")?;
        bounded(timeout, "ping", docker.ping()).await?;
        let me = std::env::var("HOSTNAME").ok();
        let mine = match &me {
            Some(h) => bounded(
                timeout,
                "inspect this container",
                docker.inspect_container(h, None::<InspectContainerOptions>),
            )
            .await
            .ok(),
            None => None,
        };
        let my_labels =
            mine.as_ref().and_then(|c| c.config.as_ref()).and_then(|c| c.labels.clone()).unwrap_or_default();
        let my_networks: Vec<String> = mine
            .as_ref()
            .and_then(|c| c.network_settings.as_ref())
            .and_then(|n| n.networks.as_ref())
            .map(|n| n.keys().cloned().collect())
            .unwrap_or_default();
        let (project, swarm) = match mode {
            Mode::Compose { project } => {
                let p =
                    project.clone().or_else(|| my_labels.get(COMPOSE_PROJECT).cloned()).ok_or_else(|| {
                        anyhow!("MANAGER_PROJECT is not set and this container has no compose project label")
                    })?;
                (Some(p), false)
            }
            Mode::Swarm => (my_labels.get("com.docker.stack.namespace").cloned(), true),
        };
        Ok(Engine { docker, timeout, project, service: service.to_string(), swarm, my_networks })
    }

    pub fn target(&self) -> String {
        match (&self.project, self.swarm) {
            (Some(p), false) => format!("compose project {p}, service {}", self.service),
            (Some(p), true) => format!("swarm service {p}_{}", self.service),
            (None, _) => format!("swarm service {}", self.service),
        }
    }

    fn filters(&self) -> HashMap<String, Vec<String>> {
        let mut f = HashMap::new();
        if self.swarm {
            let name = match &self.project {
                Some(p) => format!("{p}_{}", self.service),
                None => self.service.clone(),
            };
            f.insert("label".to_string(), vec![format!("{SWARM_SERVICE}={name}")]);
        } else {
            let p = self.project.clone().unwrap_or_default();
            f.insert(
                "label".to_string(),
                vec![format!("{COMPOSE_PROJECT}={p}"), format!("{COMPOSE_SERVICE}={}", self.service)],
            );
        }
        f
    }

    /// The replicas that are running, paused or restarting (what `docker ps` shows).
    pub async fn replicas(&self) -> anyhow::Result<Vec<Container>> {
        let mut all = self.all_replicas().await?;
        all.retain(|c| c.is_up());
        Ok(all)
    }

    /// Every replica container, stopped ones too (what `docker ps -a` shows): the control room
    /// shows a killed replica as down until it is started again.
    pub async fn all_replicas(&self) -> anyhow::Result<Vec<Container>> {
        let opts = ListContainersOptionsBuilder::new().all(true).filters(&self.filters()).build();
        let list = bounded(self.timeout, "list containers", self.docker.list_containers(Some(opts))).await?;
        let mut out = Vec::new();
        for c in list {
            let Some(id) = c.id else { continue };
            let labels = c.labels.unwrap_or_default();
            let name = c
                .names
                .and_then(|n| n.first().cloned())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_else(|| id.chars().take(12).collect());
            let number = labels
                .get(COMPOSE_NUMBER)
                .or_else(|| labels.get("com.docker.swarm.task.slot"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let networks = c.network_settings.and_then(|n| n.networks).unwrap_or_default();
            let ip = pick_ip(&networks, &self.my_networks);
            let mut ips: Vec<String> =
                networks.values().filter_map(|e| e.ip_address.clone()).filter(|ip| !ip.is_empty()).collect();
            ips.sort();
            let state = match c.state {
                Some(ContainerSummaryStateEnum::RUNNING) => "running",
                Some(ContainerSummaryStateEnum::PAUSED) => "paused",
                Some(ContainerSummaryStateEnum::RESTARTING) => "restarting",
                Some(ContainerSummaryStateEnum::CREATED) => "created",
                Some(ContainerSummaryStateEnum::EXITED) => "exited",
                Some(ContainerSummaryStateEnum::REMOVING) => "removing",
                Some(ContainerSummaryStateEnum::STOPPING) => "stopping",
                Some(ContainerSummaryStateEnum::DEAD) => "dead",
                _ => "unknown",
            }
            .to_string();
            let health = c.status.as_deref().and_then(health_from_status);
            out.push(Container { id, name, number, ip, ips, state, health });
        }
        out.sort_by_key(|c| (c.number, c.name.clone()));
        Ok(out)
    }

    /// Stop (SIGKILL after `grace`) and start again; works on a paused container too.
    pub async fn restart(&self, id: &str, grace: Duration) -> anyhow::Result<()> {
        let opts = RestartContainerOptionsBuilder::new().t(grace.as_secs() as i32).build();
        bounded(self.timeout + grace, "restart", self.docker.restart_container(id, Some(opts))).await
    }

    /// Kill with SIGKILL (Swarm then replaces the task).
    pub async fn kill(&self, id: &str) -> anyhow::Result<()> {
        self.signal(id, "SIGKILL").await
    }

    pub async fn signal(&self, id: &str, signal: &str) -> anyhow::Result<()> {
        let opts = KillContainerOptionsBuilder::new().signal(signal).build();
        bounded(self.timeout, "kill", self.docker.kill_container(id, Some(opts))).await
    }

    pub async fn pause(&self, id: &str) -> anyhow::Result<()> {
        bounded(self.timeout, "pause", self.docker.pause_container(id)).await
    }

    pub async fn unpause(&self, id: &str) -> anyhow::Result<()> {
        bounded(self.timeout, "unpause", self.docker.unpause_container(id)).await
    }

    /// The compose project this manager acts in (None in Swarm mode).
    pub fn project(&self) -> Option<&str> {
        if self.swarm {
            None
        } else {
            self.project.as_deref()
        }
    }

    /// Every container of one service of this compose project, stopped ones too, with its
    /// labels (the fault API checks them again: tests/faults.rs).
    pub async fn service_containers(&self, service: &str) -> anyhow::Result<Vec<Labelled>> {
        let Some(project) = self.project() else {
            bail!("faults act on a compose project's containers; this manager runs in Swarm mode");
        };
        let mut f = HashMap::new();
        f.insert(
            "label".to_string(),
            vec![format!("{COMPOSE_PROJECT}={project}"), format!("{COMPOSE_SERVICE}={service}")],
        );
        let opts = ListContainersOptionsBuilder::new().all(true).filters(&f).build();
        let list = bounded(self.timeout, "list containers", self.docker.list_containers(Some(opts))).await?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let id = c.id?;
                let name = c
                    .names
                    .and_then(|n| n.first().cloned())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_else(|| id.chars().take(12).collect());
                let running = matches!(c.state, Some(ContainerSummaryStateEnum::RUNNING));
                let networks: Vec<String> = c
                    .network_settings
                    .and_then(|n| n.networks)
                    .map(|n| n.keys().cloned().collect())
                    .unwrap_or_default();
                Some(Labelled { id, name, labels: c.labels.unwrap_or_default(), running, networks })
            })
            .collect())
    }

    pub async fn start(&self, id: &str) -> anyhow::Result<()> {
        bounded(self.timeout, "start", self.docker.start_container(id, None)).await
    }

    /// Graceful stop: SIGTERM, SIGKILL after `grace`.
    pub async fn stop(&self, id: &str, grace: Duration) -> anyhow::Result<()> {
        let opts = StopContainerOptionsBuilder::new().t(grace.as_secs() as i32).build();
        bounded(self.timeout + grace, "stop", self.docker.stop_container(id, Some(opts))).await
    }

    pub async fn disconnect(&self, network: &str, id: &str) -> anyhow::Result<()> {
        let req = NetworkDisconnectRequest { container: id.to_string(), force: Some(true) };
        bounded(self.timeout, "disconnect network", self.docker.disconnect_network(network, req)).await
    }

    /// Connect again, under the service's name (what compose gave it) so the others find it.
    pub async fn reconnect(&self, network: &str, id: &str, aliases: Vec<String>) -> anyhow::Result<()> {
        let req = NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: Some(EndpointSettings { aliases: Some(aliases), ..Default::default() }),
        };
        bounded(self.timeout, "connect network", self.docker.connect_network(network, req)).await
    }

    pub fn can_scale(&self) -> bool {
        !self.swarm
    }

    /// One more replica like `template`: same image, command, environment, health check,
    /// restart policy, networks and aliases, compose labels with the next container number.
    /// (Compose has no API; this is what `docker compose up --scale` creates.)
    pub async fn clone_replica(&self, template: &Container, number: u32) -> anyhow::Result<String> {
        if self.swarm {
            bail!("scaling a Swarm service is Swarm's job (docker service scale)");
        }
        let t = bounded(
            self.timeout,
            "inspect template",
            self.docker.inspect_container(&template.id, None::<InspectContainerOptions>),
        )
        .await?;
        let cfg = t.config.ok_or_else(|| anyhow!("template has no config"))?;
        let mut labels = cfg.labels.unwrap_or_default();
        labels.insert(COMPOSE_NUMBER.into(), number.to_string());
        labels.insert(CREATED_BY.into(), "distshop-manager".into());
        let project = self.project.clone().unwrap_or_default();
        // compose v2 names replicas project-service-N, docker-compose 1.x project_service_N
        let name = if template.name.starts_with(&format!("{project}_")) {
            format!("{project}_{}_{number}", self.service)
        } else {
            format!("{project}-{}-{number}", self.service)
        };
        let networks = t.network_settings.and_then(|n| n.networks).unwrap_or_default();
        let mut names: Vec<String> = networks.keys().cloned().collect();
        names.sort();
        let endpoint = |net: &str| EndpointSettings {
            aliases: Some(vec![self.service.clone(), name.clone()]),
            network_id: networks.get(net).and_then(|e| e.network_id.clone()),
            ..Default::default()
        };
        // one network at create (older API versions refuse more), the others connected before start
        let endpoints: HashMap<String, EndpointSettings> =
            names.iter().take(1).map(|n| (n.clone(), endpoint(n))).collect();
        let mut host = t.host_config.unwrap_or_default();
        if let Some(first) = names.first() {
            host.network_mode = Some(first.clone());
        }
        let body = ContainerCreateBody {
            image: cfg.image,
            env: cfg.env,
            cmd: cfg.cmd,
            entrypoint: cfg.entrypoint,
            healthcheck: cfg.healthcheck,
            labels: Some(labels),
            user: cfg.user,
            working_dir: cfg.working_dir,
            exposed_ports: cfg.exposed_ports,
            stop_signal: cfg.stop_signal,
            stop_timeout: cfg.stop_timeout,
            host_config: Some(host),
            networking_config: Some(NetworkingConfig { endpoints_config: Some(endpoints) }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = bounded(self.timeout, "create", self.docker.create_container(Some(opts), body)).await?;
        for net in names.iter().skip(1) {
            let req =
                NetworkConnectRequest { container: created.id.clone(), endpoint_config: Some(endpoint(net)) };
            if let Err(e) =
                bounded(self.timeout, "connect network", self.docker.connect_network(net, req)).await
            {
                let rm = RemoveContainerOptionsBuilder::new().force(true).build();
                let _ = bounded(self.timeout, "remove", self.docker.remove_container(&created.id, Some(rm)))
                    .await;
                return Err(e);
            }
        }
        bounded(self.timeout, "start", self.docker.start_container(&created.id, None)).await?;
        Ok(name)
    }

    /// Graceful: SIGTERM (the shop stops accepting, finishes what it has), SIGKILL after
    /// `grace`, then remove.
    pub async fn stop_and_remove(&self, id: &str, grace: Duration) -> anyhow::Result<()> {
        let opts = StopContainerOptionsBuilder::new().t(grace.as_secs() as i32).build();
        bounded(self.timeout + grace, "stop", self.docker.stop_container(id, Some(opts))).await?;
        let opts = RemoveContainerOptionsBuilder::new().force(true).build();
        bounded(self.timeout, "remove", self.docker.remove_container(id, Some(opts))).await
    }
}

/// A container of the project as the fault API sees it: its labels decide whether it may be
/// touched.
#[derive(Clone, Debug, PartialEq)]
pub struct Labelled {
    pub id: String,
    pub name: String,
    pub labels: HashMap<String, String>,
    pub running: bool,
    pub networks: Vec<String>,
}

impl Container {
    /// Running, paused or restarting: what `docker ps` (without `-a`) lists.
    pub fn is_up(&self) -> bool {
        matches!(self.state.as_str(), "running" | "paused" | "restarting")
    }
}

/// "Up 3 minutes (healthy)" → healthy; "Up 2 seconds (health: starting)" → starting.
pub fn health_from_status(status: &str) -> Option<String> {
    if status.contains("(unhealthy)") {
        Some("unhealthy".into())
    } else if status.contains("(healthy)") {
        Some("healthy".into())
    } else if status.contains("health: starting") {
        Some("starting".into())
    } else {
        None
    }
}

/// The replica's address on a network we share (else any address it has).
fn pick_ip(networks: &HashMap<String, EndpointSettings>, mine: &[String]) -> Option<String> {
    let ip_of = |e: &EndpointSettings| e.ip_address.clone().filter(|ip| !ip.is_empty());
    mine.iter().filter_map(|n| networks.get(n).and_then(ip_of)).next().or_else(|| {
        let mut names: Vec<&String> = networks.keys().collect();
        names.sort();
        names.into_iter().filter_map(|n| networks.get(n).and_then(ip_of)).next()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn health_is_read_from_the_status_line() {
        assert_eq!(health_from_status("Up 3 minutes (healthy)").as_deref(), Some("healthy"));
        assert_eq!(health_from_status("Up 3 minutes (unhealthy)").as_deref(), Some("unhealthy"));
        assert_eq!(health_from_status("Up 2 seconds (health: starting)").as_deref(), Some("starting"));
        assert_eq!(health_from_status("Up 5 minutes (Paused)"), None);
    }

    #[test]
    fn the_address_is_taken_from_a_shared_network_first() {
        let ep = |ip: &str| EndpointSettings { ip_address: Some(ip.into()), ..Default::default() };
        let nets: HashMap<String, EndpointSettings> =
            [("p_backend".to_string(), ep("10.0.1.5")), ("p_frontend".to_string(), ep("10.0.2.5"))].into();
        assert_eq!(pick_ip(&nets, &["p_frontend".into()]).as_deref(), Some("10.0.2.5"));
        assert_eq!(pick_ip(&nets, &[]).as_deref(), Some("10.0.1.5"));
        let empty: HashMap<String, EndpointSettings> = [("x".to_string(), ep(""))].into();
        assert_eq!(pick_ip(&empty, &[]), None);
    }
}
