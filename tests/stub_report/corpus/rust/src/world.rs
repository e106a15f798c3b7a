// Corpus World: plain data, except the HTTP client World::new opens.
use cucumber::World;
use std::collections::HashMap;

#[derive(Debug, World)]
pub struct BddWorld {
    pub hive_crashed: bool,
    pub worker_pids: HashMap<String, u32>,
    pub client: reqwest::Client,
    pub last_status: Option<u16>,
    pub last_exit_code: Option<i32>,
}

impl BddWorld {
    pub fn new() -> Self {
        Self {
            hive_crashed: false,
            worker_pids: HashMap::new(),
            client: reqwest::Client::new(),
            last_status: None,
            last_exit_code: None,
        }
    }

    pub fn reset_registry(&mut self) {
        self.worker_pids.clear();
    }
}
