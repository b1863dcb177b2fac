// The scanner device's page: the device credential (kept on this device only), the camera
// reading QR codes (jsQR, loaded from the site's own files), a typed code, and the gate's answer
// in large type.
import { api } from "/web/api.js";
import { h, mount, field, busy, showProblem, announce, onLeave } from "/web/ui.js";

const DEVICE_KEY = "fairtix.scanner";

const REASONS = {
  "already-used": "Already used",
  "wrong-event": "Ticket for another event",
  "code-expired": "Code expired (a screenshot?) – ask for the live code",
  "code-not-yet-valid": "Phone clock is wrong – ask the fan to fix it",
  "not-current-holder": "Ticket was resold – this code is the old holder's",
  "ticket-void": "Ticket refunded",
  "event-cancelled": "Event cancelled",
  "malformed-code": "Not a fairtix entry code",
  "forged-code": "Not a genuine code",
};

function device() {
  try { return JSON.parse(localStorage.getItem(DEVICE_KEY) || "null"); } catch { return null; }
}

export async function scannerPage(main) {
  const current = device();
  if (!current) { setupForm(main); return; }
  const verdict = h("div", { "aria-live": "assertive", "data-testid": "verdict" });
  const problem = h("div");
  const code = h("input", { name: "code", autocomplete: "off", autocapitalize: "characters", spellcheck: "false", required: true });
  const submit = h("button", { type: "submit" }, "Check ticket");
  let lastCode = "";
  let lastAt = 0;
  const scan = async (text) => {
    // A camera sees the same code many times a second: judge each code once a few seconds.
    if (text === lastCode && Date.now() - lastAt < 4000) return;
    lastCode = text; lastAt = Date.now();
    showProblem(problem, null);
    try {
      const answer = await api("POST", "/door/scans", {
        auth: false,
        headers: { Authorization: `Bearer ${current.credential}` },
        body: { code: text.trim(), gate: current.gate, scan_id: crypto.randomUUID(), scanned_at: new Date().toISOString() },
      });
      const admitted = answer.result === "admitted";
      const reason = REASONS[answer.reason] || answer.reason || "";
      const used = answer.reason === "already-used" && answer.used_at
        ? ` at ${answer.used_gate}, ${new Date(answer.used_at).toLocaleTimeString()}` : "";
      mount(verdict, h("div", { class: `verdict ${admitted ? "admitted" : "refused"}` },
        admitted ? "ADMITTED" : "REFUSED",
        h("small", {}, admitted ? (answer.seat ? `Seat ${answer.seat}` : "Welcome") : `${reason}${used}`)));
      announce(admitted ? "Admitted" : `Refused: ${reason}`);
    } catch (error) { mount(verdict); showProblem(problem, error); }
  };
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    const release = busy(submit, "Checking…");
    lastCode = "";
    await scan(code.value);
    release();
    code.value = "";
    code.focus();
  } }, field("Entry code", code, "Type the code under the QR, or use a USB reader."), submit);
  const video = h("video", { playsinline: true, muted: true, "aria-label": "Camera view" });
  video.hidden = true;
  const cameraButton = h("button", { type: "button", class: "secondary" }, "Start camera");
  cameraButton.addEventListener("click", () => startCamera(video, cameraButton, problem, scan));
  mount(main,
    h("h1", {}, `Door: ${current.gate}`),
    verdict,
    h("section", { class: "card" }, h("p", { class: "row" }, cameraButton), video, form, problem),
    h("p", {}, h("button", { type: "button", class: "secondary", onclick: () => {
      if (!confirm("Forget this device's credential?")) return;
      localStorage.removeItem(DEVICE_KEY);
      scannerPage(main);
    } }, "Forget this device")));
}

function setupForm(main) {
  const credential = h("input", { name: "credential", type: "password", autocomplete: "off", required: true });
  const gate = h("input", { name: "gate", required: true, value: "Main gate" });
  mount(main, h("h1", {}, "Set up this scanner"),
    h("form", { class: "card", onsubmit: (e) => {
      e.preventDefault();
      localStorage.setItem(DEVICE_KEY, JSON.stringify({ credential: credential.value.trim(), gate: gate.value.trim() }));
      scannerPage(main);
    } },
    h("p", {}, "The organizer registers this device on the event's live sales page and gives you its credential (fts_…)."),
    field("Device credential", credential, "Stored on this device only."),
    field("Gate", gate),
    h("button", { type: "submit" }, "Start scanning")));
}

function loadJsQR() {
  if (window.jsQR) return Promise.resolve(window.jsQR);
  return new Promise((resolve, reject) => {
    const script = h("script", { src: "/web/vendor/jsQR.js" });
    script.addEventListener("load", () => resolve(window.jsQR));
    script.addEventListener("error", () => reject(new Error("The QR reader didn't load.")));
    document.head.append(script);
  });
}

async function startCamera(video, button, problem, scan) {
  showProblem(problem, null);
  let stream;
  try {
    const jsQR = await loadJsQR();
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    button.hidden = true;
    const canvas = document.createElement("canvas");
    const context = canvas.getContext("2d", { willReadFrequently: true });
    let running = true;
    onLeave(() => { running = false; stream.getTracks().forEach((t) => t.stop()); });
    const frame = async () => {
      if (!running) return;
      if (video.readyState >= 2 && video.videoWidth) {
        canvas.width = video.videoWidth; canvas.height = video.videoHeight;
        context.drawImage(video, 0, 0);
        const image = context.getImageData(0, 0, canvas.width, canvas.height);
        const found = jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
        if (found?.data) await scan(found.data);
      }
      setTimeout(() => requestAnimationFrame(frame), 150);
    };
    frame();
  } catch (error) {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    showProblem(problem, error?.name === "NotAllowedError"
      ? new Error("The camera wasn't allowed. Allow it in the browser, or type the codes.")
      : error?.name === "NotFoundError" ? new Error("No camera found on this device. Type the codes instead.") : error);
  }
}
