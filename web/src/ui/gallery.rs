//! The gallery's history: every image made here, kept in this browser's IndexedDB (never
//! uploaded) so it survives a reload, newest first.

use super::state::{AppState, GalleryItem};
use crate::protocol::{get, get_f64, get_string, object};
use idb::{Database, DatabaseEvent, Factory, ObjectStoreParams, TransactionMode};
use js_sys::{Array, Uint8Array};
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

const DB: &str = "easel";
const STORE: &str = "images";

/// An object URL for a PNG (`<img src>`, the download link).
pub fn object_url(png: &[u8]) -> String {
    let parts = Array::of1(&Uint8Array::from(png).into());
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/png");
    web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .and_then(|b| web_sys::Url::create_object_url_with_blob(&b))
        .unwrap_or_default()
}

async fn open() -> Result<Database, String> {
    let factory = Factory::new().map_err(|e| e.to_string())?;
    let mut request = factory.open(DB, Some(1)).map_err(|e| e.to_string())?;
    request.on_upgrade_needed(|event| {
        if let Ok(db) = event.database() {
            let mut params = ObjectStoreParams::new();
            params.auto_increment(true);
            let _ = db.create_object_store(STORE, params);
        }
    });
    request.await.map_err(|e| e.to_string())
}

/// An image as a plain object (what the history stores, and what the tests read).
pub fn record(img: &GalleryItem) -> JsValue {
    object(&[
        ("png", Uint8Array::from(img.png.as_slice()).into()),
        ("infotext", img.infotext.clone().into()),
        ("seed", (img.seed as f64).into()),
        ("width", img.width.into()),
        ("height", img.height.into()),
    ])
}

/// Reads the history into the gallery (at start).
pub async fn restore(st: AppState) {
    let read = async {
        let db = open().await?;
        let tx = db
            .transaction(&[STORE], TransactionMode::ReadOnly)
            .map_err(|e| e.to_string())?;
        let store = tx.object_store(STORE).map_err(|e| e.to_string())?;
        let keys = store
            .get_all_keys(None, None)
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        let values = store
            .get_all(None, None)
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        let mut items: Vec<GalleryItem> = keys
            .iter()
            .zip(values.iter())
            .map(|(k, v)| {
                let png = get(v, "png")
                    .dyn_into::<Uint8Array>()
                    .map(|a| a.to_vec())
                    .unwrap_or_default();
                GalleryItem {
                    key: k.as_f64().unwrap_or(0.0) as u32,
                    url: object_url(&png),
                    png,
                    infotext: get_string(v, "infotext").unwrap_or_default(),
                    seed: get_f64(v, "seed").unwrap_or(0.0) as u64,
                    width: get_f64(v, "width").unwrap_or(0.0) as u32,
                    height: get_f64(v, "height").unwrap_or(0.0) as u32,
                }
            })
            .collect();
        items.reverse();
        Ok::<_, String>(items)
    };
    match read.await {
        Ok(items) => st.gallery.set(items),
        Err(e) => st.fail(format!("the history cannot be read: {e}")),
    }
}

/// Adds a job's images to the gallery and the history.
pub async fn add(st: AppState, images: Vec<GalleryItem>) {
    let mut stored = Vec::new();
    let write = async {
        let db = open().await?;
        let tx = db
            .transaction(&[STORE], TransactionMode::ReadWrite)
            .map_err(|e| e.to_string())?;
        let store = tx.object_store(STORE).map_err(|e| e.to_string())?;
        for img in &images {
            let key = store
                .add(&record(img), None)
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
            stored.push(GalleryItem {
                key: key.as_f64().unwrap_or(0.0) as u32,
                ..img.clone()
            });
        }
        tx.commit()
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    if let Err(e) = write.await {
        st.fail(format!("the image could not be kept in the history: {e}"));
        stored = images;
    }
    st.gallery.update(|g| {
        for img in stored {
            g.insert(0, img);
        }
    });
}

/// Removes one image (`key`), or every image (`None`), from the gallery and the history.
pub async fn remove(st: AppState, key: Option<u32>) {
    let delete = async {
        let db = open().await?;
        let tx = db
            .transaction(&[STORE], TransactionMode::ReadWrite)
            .map_err(|e| e.to_string())?;
        let store = tx.object_store(STORE).map_err(|e| e.to_string())?;
        match key {
            Some(k) => store
                .delete(JsValue::from(k))
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?,
            None => store
                .clear()
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?,
        }
        tx.commit()
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    if let Err(e) = delete.await {
        st.fail(format!("the history could not be changed: {e}"));
        return;
    }
    st.gallery.update(|g| {
        g.retain(|i| key.is_some_and(|k| i.key != k));
    });
}
