//! Panicking workers are failures, and the runtime survives hundreds of them in a row without
//! leaking run slots. (Its own test binary: it silences the panic hook.)

use std::time::Duration;

use backwork_scheduler::{
    JobRequest, JobState, RunResult, Runtime, TokioClock, WorkResult, worker_fn,
};

#[tokio::test(start_paused = true)]
async fn hundreds_of_panicking_runs_leave_the_runtime_healthy() {
    std::panic::set_hook(Box::new(|_| {}));
    let rt = Runtime::builder()
        .clock(TokioClock::starting_at(
            "2026-01-01T00:00:00Z".parse().unwrap(),
        ))
        .worker(
            "boom",
            worker_fn(|ctx| async move {
                if ctx.attempt() > 0 {
                    panic!("worker bug on attempt {}", ctx.attempt());
                }
                WorkResult::success()
            }),
        )
        .worker("fine", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..500 {
        ids.push(rt.enqueue(JobRequest::once("boom")).await.unwrap());
    }
    rt.wait_idle().await.unwrap();
    for id in &ids {
        let job = rt.job(*id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.history[0].result, RunResult::Failure);
        assert!(
            job.history[0]
                .note
                .as_deref()
                .unwrap()
                .contains("worker bug on attempt 1")
        );
    }
    // every slot came back: four fresh jobs start together
    let fine: Vec<_> = futures(&rt).await;
    rt.wait_idle().await.unwrap();
    for id in fine {
        assert_eq!(
            rt.job(id).await.unwrap().unwrap().state,
            JobState::Succeeded
        );
    }
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
    let _ = std::panic::take_hook();
}

async fn futures(rt: &Runtime) -> Vec<backwork_scheduler::JobId> {
    let mut v = Vec::new();
    for _ in 0..4 {
        v.push(rt.enqueue(JobRequest::once("fine")).await.unwrap());
    }
    v
}
