//! The page's handle on its Web Worker: sends requests ([`crate::protocol`]) and resolves
//! each with the worker's answer; `step` and `preview` events go to one callback. The
//! worker and its pending answers are JS handles, so the client lives in a thread-local
//! (the page has one thread) rather than in a reactive signal.

use crate::protocol::{event, get, get_f64, get_string, object};
use futures::channel::oneshot;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

type Answer = Result<JsValue, String>;

struct Client {
    worker: Worker,
    pending: RefCell<HashMap<u32, oneshot::Sender<Answer>>>,
    next_id: Cell<u32>,
}

thread_local! {
    static CLIENT: RefCell<Option<Rc<Client>>> = const { RefCell::new(None) };
}

/// Starts the worker (`worker.js`, which instantiates this same wasm module and calls
/// `startWorker`) and waits until it takes requests. `on_event` gets its progress events.
pub async fn start(on_event: impl Fn(JsValue) + 'static) -> Result<(), String> {
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Module);
    let worker = Worker::new_with_options("worker.js", &options).map_err(|e| {
        format!(
            "cannot start the worker: {}",
            crate::protocol::error_text(&e)
        )
    })?;
    let client = Rc::new(Client {
        worker,
        pending: RefCell::new(HashMap::new()),
        next_id: Cell::new(1),
    });
    let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
    let ready_tx = RefCell::new(Some(ready_tx));
    let weak = Rc::downgrade(&client);
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |ev: MessageEvent| {
        let msg = ev.data();
        match get_string(&msg, "type").as_deref() {
            Some(event::READY) => {
                if let Some(tx) = ready_tx.borrow_mut().take() {
                    let _ = tx.send(Ok(()));
                }
            }
            Some(event::OK) | Some(event::ERROR) => {
                let Some(client) = weak.upgrade() else { return };
                let id = get_f64(&msg, "id").unwrap_or(0.0) as u32;
                let answer = if get_string(&msg, "type").as_deref() == Some(event::OK) {
                    Ok(get(&msg, "value"))
                } else {
                    Err(get_string(&msg, "message").unwrap_or_else(|| "failed".into()))
                };
                let waiting = client.pending.borrow_mut().remove(&id);
                if let Some(tx) = waiting {
                    let _ = tx.send(answer);
                }
            }
            _ => on_event(msg),
        }
    });
    client
        .worker
        .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let on_error = Closure::<dyn Fn(web_sys::ErrorEvent)>::new(move |e: web_sys::ErrorEvent| {
        web_sys::console::error_1(&format!("worker failed: {}", e.message()).into());
    });
    client
        .worker
        .set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    CLIENT.with(|c| *c.borrow_mut() = Some(client));
    ready_rx
        .await
        .map_err(|_| "the worker stopped while starting".to_string())?
}

fn client() -> Result<Rc<Client>, String> {
    CLIENT
        .with(|c| c.borrow().clone())
        .ok_or_else(|| "the worker is not running".to_string())
}

/// Sends a request of `kind` with `fields` and waits for its answer.
pub async fn request(kind: &str, fields: Vec<(&str, JsValue)>) -> Answer {
    let client = client()?;
    let id = client.next_id.get();
    client.next_id.set(id + 1);
    let (tx, rx) = oneshot::channel();
    client.pending.borrow_mut().insert(id, tx);
    let mut pairs = vec![("id", JsValue::from(id)), ("type", JsValue::from(kind))];
    pairs.extend(fields);
    if let Err(e) = client.worker.post_message(&object(&pairs)) {
        client.pending.borrow_mut().remove(&id);
        return Err(crate::protocol::error_text(&e));
    }
    rx.await.map_err(|_| "the worker stopped".to_string())?
}

/// Sends a message that has no answer (`skip`, `interrupt`).
pub fn notify(kind: &str) {
    if let Ok(client) = client() {
        let _ = client
            .worker
            .post_message(&object(&[("type", JsValue::from(kind))]));
    }
}
