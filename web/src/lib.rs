//! aura in the browser: the same engine and WGSL kernels, on wgpu's WebGPU backend.
//!
//! JS drives it (`web/main.js`): `Demo.create()` opens the adapter, `load_model` takes
//! the GGUF bytes the page fetched, `start` renders the chat and prefills, and `next`
//! decodes one token at a time so the page can stream the reply and stay responsive.
//! Every method that awaits the GPU returns a `Promise` built from a `'static` future
//! over shared state, so JS may hold the `Demo` across awaits.
use std::cell::RefCell;
use std::rc::Rc;

use aura::kv::scheme::KvScheme;
use aura::model::tokenizer::ChatMessage;
use aura::{Backend, Engine, HostModel, Model, Options, Sampler, SamplerConfig, Session, SessionOptions};
use wasm_bindgen::prelude::*;

/// Why the device was lost, once it has been (set by wgpu's device-lost callback).
static LOST: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// KV schemes the page offers.
pub const WEB_SCHEMES: [&str; 4] = ["f16", "aura8v4", "aura4v4", "aura4v2"];

struct Chat {
    session: Session,
    /// Tokens whose K/V rows the session holds, in order.
    cached: Vec<u32>,
    /// The conversation so far (user and assistant turns).
    messages: Vec<ChatMessage>,
}

struct Reply {
    sampler: Sampler,
    logits: Vec<f32>,
    ids: Vec<u32>,
    text: String,
    max_tokens: usize,
    ignore_eos: bool,
    done: bool,
}

struct State {
    engine: Engine,
    model: Option<Model>,
    chat: Option<Chat>,
    reply: Option<Reply>,
    busy: bool,
}

/// The demo's handle on the engine, the model and one chat.
#[wasm_bindgen]
pub struct Demo {
    state: Rc<RefCell<State>>,
}

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// Marks the state busy for the lifetime of one async call; a second call meanwhile is refused.
struct Busy(Rc<RefCell<State>>);

impl Busy {
    fn take(state: &Rc<RefCell<State>>) -> Result<Busy, JsValue> {
        let mut s = state.borrow_mut();
        if s.busy {
            return Err(js_err("the engine is busy with another call; await it first"));
        }
        s.busy = true;
        Ok(Busy(state.clone()))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.borrow_mut().busy = false;
    }
}

fn kv_of(scheme: &str) -> Result<KvScheme, JsValue> {
    if !WEB_SCHEMES.contains(&scheme) {
        return Err(js_err(format!("KV scheme `{scheme}` is not offered here (choose {})", WEB_SCHEMES.join(", "))));
    }
    KvScheme::parse(scheme).map_err(js_err)
}

#[wasm_bindgen]
impl Demo {
    /// Open the WebGPU adapter. `f16` / `subgroups`: "on", "off" or "" (auto). Resolves
    /// to a `Demo`; rejects with a readable message when WebGPU is missing.
    pub fn create(f16: String, subgroups: String) -> js_sys::Promise {
        console_error_panic_hook::set_once();
        wasm_bindgen_futures::future_to_promise(async move {
            let flag = |name: &str, v: &str| -> Result<Option<bool>, JsValue> {
                match v {
                    "" | "auto" => Ok(None),
                    "on" => Ok(Some(true)),
                    "off" => Ok(Some(false)),
                    o => Err(js_err(format!("{name} takes on, off or auto, not `{o}`"))),
                }
            };
            let options = Options {
                backend: Some(Backend::WebGpu),
                f16: flag("f16", &f16)?,
                subgroups: flag("subgroups", &subgroups)?,
                ..Options::default()
            };
            let engine = Engine::new(options).await.map_err(js_err)?;
            // The callback must be Send, so it leaves the reason where `lost()` finds it.
            engine.gpu.device.set_device_lost_callback(|reason, message| {
                *LOST.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{reason:?}: {message}"));
            });
            let state = State { engine, model: None, chat: None, reply: None, busy: false };
            Ok(Demo { state: Rc::new(RefCell::new(state)) }.into())
        })
    }

    /// The reason the GPU device was lost, or `undefined` while it is alive.
    pub fn lost(&self) -> Option<String> {
        LOST.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adapter, backend and the kernel variants the engine chose.
    pub fn adapter_info(&self) -> String {
        self.state.borrow().engine.describe()
    }

    /// `{"f16": bool, "subgroups": bool, "adapter": "...", "max_storage_binding": n}` as JSON.
    pub fn variant_json(&self) -> String {
        let s = self.state.borrow();
        let (v, c) = (s.engine.variant(), s.engine.caps());
        serde_json::json!({
            "f16": v.f16,
            "subgroups": v.subgroups,
            "adapter": c.adapter,
            "backend": c.backend,
            "max_storage_binding": c.max_storage_binding,
            "max_buffer": c.max_buffer,
        })
        .to_string()
    }

    /// Parse a GGUF held in memory and upload its weights. Returns a summary line.
    pub fn load_model(&self, bytes: &[u8]) -> Result<String, JsValue> {
        let _busy = Busy::take(&self.state)?;
        let host = HostModel::from_gguf_bytes(bytes).map_err(js_err)?;
        let mut s = self.state.borrow_mut();
        let model = Model::new(&s.engine, host).map_err(js_err)?;
        let c = &model.config;
        let summary = format!(
            "{} layers, hidden {}, {} heads / {} KV heads, head_dim {}, vocab {}",
            c.n_layers, c.hidden, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab
        );
        s.model = Some(model);
        s.chat = None;
        s.reply = None;
        Ok(summary)
    }

    /// Forget the conversation.
    pub fn reset(&self) {
        let mut s = self.state.borrow_mut();
        s.chat = None;
        s.reply = None;
    }

    /// Add a user turn and prefill it (reusing the cached prefix of the conversation).
    /// Resolves to a JSON object: prompt token count, tokens actually prefilled, KV bytes.
    pub fn start(
        &self,
        prompt: String,
        kv: String,
        capacity: u32,
        max_tokens: u32,
        greedy: bool,
        ignore_eos: bool,
    ) -> js_sys::Promise {
        let state = self.state.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let _busy = Busy::take(&state)?;
            let scheme = kv_of(&kv)?;
            let (model, chat) = {
                let mut s = state.borrow_mut();
                let model = s.model.clone().ok_or_else(|| js_err("no model loaded"))?;
                s.reply = None;
                (model, s.chat.take())
            };
            let capacity = (capacity as usize).clamp(64, model.config.context_length.max(64));
            let mut chat = match chat {
                Some(c) if c.session.scheme() == scheme && c.session.capacity() == capacity => c,
                _ => Chat {
                    session: Session::new(&model, SessionOptions { capacity, kv: Some(scheme), ..Default::default() })
                        .await
                        .map_err(js_err)?,
                    cached: Vec::new(),
                    messages: Vec::new(),
                },
            };
            chat.messages.push(ChatMessage::new("user", prompt));
            let tok = &model.tokenizer;
            let text = tok.render_chat(&chat.messages, true).map_err(js_err)?;
            let ids = tok.encode(&text, true).map_err(js_err)?;
            let needed = ids.len() + max_tokens as usize;
            if needed > capacity {
                chat.messages.pop();
                let msg = format!(
                    "the conversation needs {needed} tokens (prompt {} + reply {max_tokens}) but the KV cache holds {capacity}; press Reset",
                    ids.len()
                );
                state.borrow_mut().chat = Some(chat);
                return Err(js_err(msg));
            }
            // Reuse the longest cached prefix (always re-feed at least the last token).
            let mut keep = chat.cached.iter().zip(&ids).take_while(|(a, b)| a == b).count();
            keep = keep.min(ids.len() - 1);
            chat.session.rewind(keep).map_err(js_err)?;
            chat.cached.truncate(keep);
            let logits = match chat.session.prefill(&ids[keep..]).await {
                Ok(l) => l,
                Err(e) => {
                    // The cache may be half-written: drop the chat rather than reuse it.
                    return Err(js_err(e));
                }
            };
            chat.cached.extend_from_slice(&ids[keep..]);
            let info = serde_json::json!({
                "prompt_tokens": ids.len(),
                "prefilled": ids.len() - keep,
                "kv_scheme": match chat.session.scheme() {
                    KvScheme::F16 if !model.gpu.variant.f16 => "dense f32".to_string(),
                    KvScheme::F16 => "dense f16".to_string(),
                    s => s.name(),
                },
                "kv_bytes_per_token": chat.session.kv_bytes_per_token(),
                "kv_bytes_total": chat.session.kv_bytes_total(),
                "capacity": capacity,
            });
            let sampler = Sampler::new(if greedy {
                SamplerConfig::greedy()
            } else {
                SamplerConfig { temperature: 0.7, top_k: 40, top_p: 0.95, seed: js_sys::Date::now() as u64 }
            });
            let mut s = state.borrow_mut();
            s.chat = Some(chat);
            s.reply = Some(Reply {
                sampler,
                logits,
                ids: Vec::new(),
                text: String::new(),
                max_tokens: max_tokens as usize,
                ignore_eos,
                done: false,
            });
            Ok(JsValue::from_str(&info.to_string()))
        })
    }

    /// Sample the next token and run it through the model. Resolves to JSON
    /// `{"id": n|null, "piece": "...", "done": bool, "ids": [...]}` (`ids` when done).
    pub fn next(&self) -> js_sys::Promise {
        let state = self.state.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let _busy = Busy::take(&state)?;
            let (model, mut chat, mut reply) = {
                let mut s = state.borrow_mut();
                let model = s.model.clone().ok_or_else(|| js_err("no model loaded"))?;
                let chat = s.chat.take().ok_or_else(|| js_err("no conversation: call start first"))?;
                let reply = s.reply.take().ok_or_else(|| js_err("no reply in progress: call start first"))?;
                (model, chat, reply)
            };
            let tok = &model.tokenizer;
            let mut out = serde_json::json!({ "id": null, "piece": "", "done": true });
            if !reply.done {
                let next = reply.sampler.sample(&reply.logits);
                if tok.is_stop(next) && !reply.ignore_eos {
                    reply.done = true;
                } else {
                    reply.ids.push(next);
                    let text = tok.decode(&reply.ids, true).map_err(js_err)?;
                    // Emit only whole characters; a partial UTF-8 sequence waits for the next token.
                    let piece = if text.ends_with('\u{fffd}') || !text.starts_with(&reply.text) {
                        String::new()
                    } else {
                        text[reply.text.len()..].to_string()
                    };
                    if !piece.is_empty() {
                        reply.text = text;
                    }
                    reply.done = reply.ids.len() >= reply.max_tokens;
                    // Feed the token so its K/V row is cached (and its logits ready if we go on).
                    match chat.session.step(next).await {
                        Ok(l) => reply.logits = l,
                        Err(e) => return Err(js_err(e)),
                    }
                    chat.cached.push(next);
                    out = serde_json::json!({ "id": next, "piece": piece, "done": reply.done });
                }
            }
            if reply.done {
                let text = tok.decode(&reply.ids, true).map_err(js_err)?;
                out["ids"] = serde_json::json!(reply.ids);
                out["text"] = serde_json::json!(text);
                if chat.messages.last().map(|m| m.role.as_str()) == Some("user") {
                    chat.messages.push(ChatMessage::new("assistant", text));
                }
            }
            let mut s = state.borrow_mut();
            s.chat = Some(chat);
            s.reply = Some(reply);
            Ok(JsValue::from_str(&out.to_string()))
        })
    }
}
