"""The archive's reading guide, ``LISEZMOI.html`` (ENR-7): in French, self-contained (no script, no outside file,
its style inline), readable offline in any browser, listing everything the archive holds with links to the files."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from urllib.parse import quote

SECTIONS = (
    "Identité",
    "Documents",
    "Profil médical",
    "Agenda",
    "Messagerie",
    "Accès et consentements",
    "Historique",
)
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5;"
    "color:#161616}h1{font-size:1.8rem}h2{font-size:1.3rem;margin-top:2rem;border-bottom:1px solid #ddd}"
    "li{margin:.25rem 0}.note{background:#f6f6f6;padding:1rem;border-left:4px solid #000091}"
)


@dataclass(frozen=True)
class Line:
    text: str
    files: tuple[tuple[str, str], ...] = ()  # (relative path, label)


@dataclass
class Guide:
    name: str
    generated: str  # « le 05/12/2026 à 09:48 »
    requested_by: str
    lines: dict[str, list[Line]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, section: str, text: str, files: tuple[tuple[str, str], ...] = ()) -> None:
        self.lines.setdefault(section, []).append(Line(text, files))

    def count(self, section: str) -> None:
        self.counts[section] = self.counts.get(section, 0) + 1


def render(guide: Guide) -> str:
    parts = [
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">',
        f"<title>Archive de l'espace santé de {escape(guide.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Archive de l'espace santé de {escape(guide.name)}</h1>",
        f"<p>Archive préparée {escape(guide.generated)}, à la demande de {escape(guide.requested_by)}.</p>",
        '<div class="note"><p>Ce dossier contient tout ce que vous pouviez consulter dans votre espace santé Carnet : '
        "les documents d'origine (tels qu'ils ont été déposés), votre profil médical, votre agenda, vos messages, "
        "les accès que vous avez donnés et l'historique de votre espace.</p>"
        "<p>Le fichier <code>bundle.json</code> contient les mêmes informations au format international FHIR R4, "
        "pour les logiciels de santé ; <code>manifest.json</code> donne l'empreinte (SHA-256) de chaque fichier, "
        "pour vérifier qu'aucun n'a été modifié. Gardez cette archive en lieu sûr : elle contient des données de "
        "santé et n'est pas chiffrée.</p></div>",
        "<h2>Sommaire</h2><ul>",
    ]
    for number, section in enumerate(SECTIONS):
        total = guide.counts.get(section, len(guide.lines.get(section, [])))
        parts.append(f'<li><a href="#s{number}">{escape(section)}</a> ({total})</li>')
    parts.append("</ul>")
    for number, section in enumerate(SECTIONS):
        parts.append(f'<h2 id="s{number}">{escape(section)}</h2>')
        lines = guide.lines.get(section, [])
        if not lines:
            parts.append("<p>Rien dans cette rubrique.</p>")
            continue
        parts.append("<ul>")
        for line in lines:
            links = "".join(f' — <a href="{escape(quote(path))}">{escape(label)}</a>' for path, label in line.files)
            parts.append(f"<li>{escape(line.text)}{links}</li>")
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
