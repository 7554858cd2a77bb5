"""A script written for A1111's API, run unchanged against `easel serve`: the `webuiapi`
client (PyPI) drives the server; the image it gets must equal `easel generate`'s for the
same settings, pixel for pixel.

Usage: python webuiapi_client.py EASEL_BINARY MODELS_DIR
"""
import subprocess
import sys
import tempfile
import threading
import time

import webuiapi
from PIL import Image

EASEL, MODELS = sys.argv[1], sys.argv[2]


def start_server(*extra):
    p = subprocess.Popen([EASEL, "serve", "--port", "0", "--dir", "/nonexistent",
                          "--models", MODELS, *extra],
                         stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("listening on "):
            port = int(line.split()[2].rstrip("/").rsplit(":", 1)[1])
            threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
            return p, port
    raise SystemExit("easel serve exited before listening")


def main():
    server, port = start_server("--api-auth", "alice:s3cret", "--max-steps", "1000")
    try:
        api = webuiapi.WebUIApi(host="127.0.0.1", port=port)
        api.set_auth("alice", "s3cret")

        names = api.util_get_model_names()
        tiny = [n for n in names if n.startswith("tiny [")]
        assert tiny, names
        api.set_options({"sd_model_checkpoint": tiny[0], "CLIP_stop_at_last_layers": 1})
        assert api.get_options()["sd_model_checkpoint"] == tiny[0]

        r = api.txt2img(prompt="a red fox, (snow:1.2)", negative_prompt="blurry", seed=7,
                        steps=3, width=64, height=48, cfg_scale=7, sampler_name="Euler a")
        assert len(r.images) == 1
        infotext = r.info["infotexts"][0]
        assert r.info["all_seeds"] == [7], r.info
        assert r.image.info["parameters"] == infotext

        with tempfile.TemporaryDirectory() as d:
            out = f"{d}/cli.png"
            subprocess.run([EASEL, "generate", "--models", MODELS, "--model", tiny[0],
                            "--prompt", "a red fox, (snow:1.2)", "--negative", "blurry",
                            "--seed", "7", "--steps", "3", "--size", "64x48", "--cfg", "7",
                            "--sampler", "Euler a", "-o", out], check=True)
            cli = Image.open(out)
            cli.load()
            assert cli.info["parameters"] == infotext, (cli.info["parameters"], infotext)
            assert cli.convert("RGB").tobytes() == r.image.convert("RGB").tobytes(), \
                "webuiapi's image differs from easel generate's"

        info = api.png_info(r.image)
        assert info.info == infotext, info.info

        # Inpainting and hires fix through the client's own img2img / txt2img helpers.
        init = Image.new("RGB", (64, 64))
        init.putdata([(x * 4, y * 4, (x + y) * 2) for y in range(64) for x in range(64)])
        mask = Image.new("L", (64, 64), 0)
        mask.paste(255, (16, 20, 40, 44))
        r = api.img2img(images=[init], mask_image=mask, prompt="a red fox", seed=3, steps=4,
                        width=64, height=64, sampler_name="Euler", denoising_strength=0.6,
                        mask_blur=2, inpainting_fill=1, inpaint_full_res=False)
        h = api.txt2img(prompt="a red fox", seed=3, steps=3, width=64, height=64,
                        sampler_name="Euler", enable_hr=True, hr_scale=1.5,
                        hr_upscaler="Latent (nearest)", hr_second_pass_steps=2,
                        denoising_strength=0.5)
        assert h.image.size == (96, 96), h.image.size
        with tempfile.TemporaryDirectory() as d:
            init.save(f"{d}/init.png")
            mask.save(f"{d}/mask.png")
            for what, got, extra in [
                ("inpainting", r, ["--init-img", f"{d}/init.png", "--mask", f"{d}/mask.png",
                                   "--denoising-strength", "0.6", "--mask-blur", "2",
                                   "--inpainting-fill", "original", "--steps", "4"]),
                ("hires fix", h, ["--hires", "--hr-scale", "1.5", "--hr-upscaler",
                                  "Latent (nearest)", "--hr-second-pass-steps", "2",
                                  "--denoising-strength", "0.5", "--steps", "3"]),
            ]:
                out = f"{d}/{what}.png"
                subprocess.run([EASEL, "generate", "--models", MODELS, "--model", tiny[0],
                                "--prompt", "a red fox", "--seed", "3", "--size", "64x64",
                                "--sampler", "Euler", *extra, "-o", out], check=True)
                cli = Image.open(out)
                cli.load()
                assert cli.info["parameters"] == got.info["infotexts"][0], \
                    (what, cli.info["parameters"], got.info["infotexts"][0])
                assert cli.convert("RGB").tobytes() == got.image.convert("RGB").tobytes(), \
                    f"webuiapi's {what} image differs from easel generate's"

        # Extras: the client's upscale helper, against `easel upscale`.
        x = api.extra_single_image(image=init, upscaler_1="Lanczos", upscaling_resize=2)
        with tempfile.TemporaryDirectory() as d:
            init.save(f"{d}/init.png")
            subprocess.run([EASEL, "upscale", "--models", MODELS, "--upscaler", "Lanczos",
                            "--scale", "2", f"{d}/init.png", "-o", f"{d}/up.png"], check=True)
            cli = Image.open(f"{d}/up.png")
            cli.load()
            assert x.image.size == (128, 128), x.image.size
            assert cli.convert("RGB").tobytes() == x.image.convert("RGB").tobytes(), \
                "webuiapi's Extras image differs from easel upscale's"

        # Progress and interrupt while a long job runs.
        result = {}
        job = threading.Thread(target=lambda: result.update(
            r=api.txt2img(prompt="slow", seed=1, steps=1000, n_iter=5, width=64, height=64,
                          sampler_name="Euler")))
        job.start()
        t0 = time.time()
        while api.get_progress()["state"]["sampling_step"] == 0:
            assert time.time() - t0 < 120, "the job never started"
            time.sleep(0.05)
        p = api.get_progress()
        assert 0 < p["progress"] < 1 and p["state"]["sampling_steps"] == 1000, p
        api.interrupt()
        job.join(timeout=120)
        assert not job.is_alive(), "interrupt did not end the job"
        assert len(result["r"].images) == 1, "batches after the interrupt still ran"
        print(f"webuiapi client: OK ({tiny[0]}, txt2img, inpainting, hires and Extras images equal "
              f"easel's, "
              f"interrupt after step {p['state']['sampling_step']})")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
