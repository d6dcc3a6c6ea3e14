//! A function binary on a local port is killed and started again on the
//! same address, as Lambda replaces a lost sandbox: callers keep their URL.

use std::time::Duration;

use local_aws::process::Process;

#[tokio::test]
async fn a_killed_process_comes_back_on_the_same_address() {
    let binary = local_aws::process::build_example("echo_lambda").await.expect("built");
    let env = vec![(shared::env::BIND_ADDR.to_owned(), String::from("127.0.0.1:0"))];
    let mut process = Process::start(&binary, &env, None).await.expect("starts");
    let url = process.url().to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let health = |http: &reqwest::Client| {
        let request = http.get(format!("{url}/health"));
        async move { request.send().await.map(|r| r.status().as_u16()) }
    };
    assert_eq!(health(&http).await.unwrap(), 200);
    assert!(process.running());

    process.kill().await;
    assert!(!process.running());
    assert!(health(&http).await.is_err(), "nothing listens while it is down");

    process.restart().await.expect("starts again");
    assert_eq!(process.url(), url, "the same address");
    assert!(process.running());
    assert_eq!(health(&http).await.unwrap(), 200);

    // A process that exits on its own is seen to exit, and can be started again.
    process.kill().await;
    assert_eq!(process.exited().await, None, "already gone");
    process.restart().await.expect("starts again");
    assert_eq!(health(&http).await.unwrap(), 200);
}
