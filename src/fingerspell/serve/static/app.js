// fingerspell web page: send a photo (file, drag-drop or webcam frame) to /predict and show the answer.
"use strict";

const $ = (id) => document.getElementById(id);

function setState(state) {
  document.body.dataset.state = state;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  $("result-letter").textContent = "–";
  $("result-letter").dataset.letter = "";
  $("result-caption").textContent = "No answer";
  setState("error");
}

function renderBars(topK) {
  const list = $("top3");
  list.replaceChildren();
  for (const { letter, probability } of topK) {
    const pct = (probability * 100).toFixed(1);
    const item = document.createElement("li");
    item.className = "bar";
    item.dataset.letter = letter;
    item.innerHTML =
      `<span class="bar-letter"></span><span class="bar-track"><span class="bar-fill"></span></span>` +
      `<span class="bar-value"></span>`;
    item.querySelector(".bar-letter").textContent = letter;
    item.querySelector(".bar-fill").style.width = `${Math.max(probability * 100, 0.5)}%`;
    item.querySelector(".bar-value").textContent = `${pct}%`;
    list.append(item);
  }
}

function render(prediction) {
  const view = $("model-view");
  view.src = prediction.view;
  view.hidden = false;
  $("model-view-empty").hidden = true;
  const letter = $("result-letter");
  const advice = $("advice");
  const pct = `${(prediction.probability * 100).toFixed(1)}%`;
  if (prediction.unsure) {
    letter.textContent = "?";
    letter.dataset.letter = "";
    letter.classList.add("unsure");
    $("result-caption").textContent = `Not sure (best guess ${prediction.letter}, ${pct})`;
    advice.textContent = prediction.advice;
    advice.hidden = false;
  } else {
    letter.textContent = prediction.letter;
    letter.dataset.letter = prediction.letter;
    letter.classList.remove("unsure");
    $("result-caption").textContent = `${pct} sure`;
    advice.hidden = true;
  }
  renderBars(prediction.top_k);
  setState("done");
}

async function predict(blob, name) {
  $("error").hidden = true;
  const preview = $("photo-preview");
  if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(blob);
  preview.hidden = false;
  $("drop-hint").hidden = true;
  $("result-caption").textContent = "Reading…";
  setState("busy");
  const form = new FormData();
  form.append("file", blob, name || "photo.png");
  try {
    const crop = $("find-hand").checked ? "auto" : "center";
    const tta = $("tta").checked;
    const query = `view=true&top_k=3&crop=${crop}&tta=${tta}`;
    const response = await fetch(`/predict?${query}`, { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) {
      showError(body.message || `the server answered ${response.status}`);
      return;
    }
    render(body.predictions[0]);
  } catch (err) {
    showError(`could not reach the server (${err.message})`);
  }
}

function firstImage(files) {
  const file = files && files[0];
  if (!file) return;
  predict(file, file.name);
}

function setUpFilePicker() {
  const input = $("file-input");
  $("choose-button").addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    firstImage(input.files);
    input.value = "";
  });
  $("drop-zone").addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") input.click();
  });
}

function setUpDragDrop() {
  const zone = $("drop-zone");
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    firstImage(event.dataTransfer.files);
  });
  // a photo dropped anywhere else on the page should not navigate away
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}

function setUpWebcam() {
  // getUserMedia exists only in secure contexts (https or localhost) and browsers with a camera API
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  const video = $("webcam");
  const start = $("webcam-button");
  const capture = $("capture-button");
  start.hidden = false;
  start.addEventListener("click", async () => {
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
      video.hidden = false;
      capture.hidden = false;
      start.hidden = true;
    } catch (err) {
      showError(`webcam not available (${err.message}); choose a photo instead`);
    }
  });
  capture.addEventListener("click", () => {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    // JPEG: a tenth of the bytes of a PNG frame, and the server decodes it at reduced scale
    canvas.toBlob((blob) => blob && predict(blob, "webcam.jpg"), "image/jpeg", 0.92);
  });
}

async function loadModelInfo() {
  try {
    const meta = await (await fetch("/metadata")).json();
    const run = meta.run_id ? `run ${meta.run_id.slice(0, 12)}` : "no run id";
    if (meta.crop) $("find-hand").checked = meta.crop === "auto";
    if (typeof meta.tta === "boolean") $("tta").checked = meta.tta;
    $("model-info").textContent =
      `model ${meta.version || "unversioned"} · ${run} · ${meta.letters.length} letters`;
  } catch (err) {
    $("model-info").textContent = "model information unavailable";
  }
}

setUpFilePicker();
setUpDragDrop();
setUpWebcam();
loadModelInfo();
