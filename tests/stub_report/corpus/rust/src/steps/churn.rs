// Corpus: ``// expect: VERDICT [RULE...]`` on a ``fn`` line is checked by test_corpus.py.
use crate::world::BddWorld;
use cucumber::{given, then, when};

#[given(expr = "a hive with {int} workers")]
pub async fn given_hive(world: &mut BddWorld, count: u32) { // expect: implemented real.io
    let output = tokio::process::Command::new("true").arg(count.to_string()).output().await.expect("spawn");
    world.last_exit_code = output.status.code();
}

#[when(expr = "{int} workers are spawned")]
pub async fn when_workers_spawned(world: &mut BddWorld, count: u32) { // expect: hollow inert.state
    for i in 0..count {
        world.worker_pids.insert(format!("worker-{}", i), 1000 + i);
    }
    tracing::info!("spawned {} workers", count);
}

#[then(expr = "the registry has {int} workers")]
pub async fn then_registry_count(world: &mut BddWorld, count: usize) { // expect: hollow
    assert_eq!(world.worker_pids.len(), count);
}

#[when("the network is partitioned")]
pub async fn when_partitioned(world: &mut BddWorld) { // expect: hollow
    world.hive_crashed = true;
}

#[then("the queen detects the loss")]
pub async fn then_detects(world: &mut BddWorld) { // expect: hollow
    assert!(world.hive_crashed);
}

#[then(regex = r"^the gateway answers (\d+)$")]
pub async fn then_gateway_answers(world: &mut BddWorld, status: u16) { // expect: implemented real.state
    let response = world.client.get("http://127.0.0.1:9/health").send().await.expect("send");
    world.last_status = Some(response.status().as_u16());
    assert_eq!(world.last_status, Some(status));
}

#[then(expr = "the exit code is {int}")]
pub async fn then_exit_code(world: &mut BddWorld, code: i32) { // expect: implemented real.state
    assert_eq!(world.last_exit_code, Some(code));
}

#[given(expr = "model download fails at {int}%")]
pub async fn given_download_fails(world: &mut BddWorld, progress: u32) { // expect: hollow output.log
    tracing::debug!("Download fails at {}%", progress);
}

#[when(expr = "the worker is restarted")]
pub async fn when_restarted(world: &mut BddWorld) { // expect: stub pending.marker
    tracing::info!("restarting");
    todo!()
}

#[then(expr = "nothing is checked")]
pub async fn then_nothing(world: &mut BddWorld) { // expect: stub
    // TODO: check the registry
}

#[when(expr = "the registry is reset")]
pub async fn when_reset(world: &mut BddWorld) { // expect: hollow
    world.reset_registry();
}

#[when(expr = "the mock hive answers")]
pub async fn when_mock(world: &mut BddWorld) { // expect: hollow mock.library
    crate::mock_hive::start_mock_hive().await;
}

#[when(expr = "the product computes a plan")]
pub async fn when_product(world: &mut BddWorld) { // expect: implemented real.product
    let plan = product_core::plan::compute(3);
    world.last_status = Some(plan.len() as u16);
}

#[given("a worker is registered")]
#[given("a worker registered")]
pub async fn given_registered(world: &mut BddWorld) { // expect: hollow
    world.worker_pids.insert("w".to_string(), 1);
}

#[then(expr = "an unused step")]
pub async fn then_unused(world: &mut BddWorld) { // expect: unused
    let _ = std::fs::read_to_string("/proc/self/status");
}

#[given(expr = "a worker {string} exists")]
pub async fn given_named_worker(world: &mut BddWorld, name: String) { // expect: hollow
    world.worker_pids.insert(name, 7);
}

#[given(regex = r#"^a worker "(\w+)" exists$"#)]
pub async fn given_named_worker_again(world: &mut BddWorld, name: String) { // expect: hollow
    world.worker_pids.insert(name, 8);
}
