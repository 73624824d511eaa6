"""The ``carnet`` command: serve, migrate, demo data, audit verification."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import typer

from carnet.config import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from carnet.bootstrap import Services
    from carnet.hall.actors import Actor

app = typer.Typer(
    help="Carnet — espace numérique de santé. Toutes les commandes lisent les variables CARNET_* "
    "(CARNET_DATA_DIR, CARNET_DATABASE_URL, CARNET_SMTP_URL, CARNET_BASE_URL, CARNET_MASTER_KEY_FILE…).",
    no_args_is_help=True,
    add_completion=False,
)
audit_app = typer.Typer(help="Journal d'audit (historique infalsifiable).", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _settings() -> Settings:
    return Settings()


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@app.command()
def migrate() -> None:
    """Crée ou met à jour le schéma de la base (migrations Alembic)."""
    from carnet.bootstrap import build_services
    from carnet.storage.migrate import upgrade

    settings = _settings()
    build_services(settings)  # creates the data folder and, on first start, the keys
    upgrade(settings.resolved_database_url)
    typer.echo("Base de données à jour.")


@app.command()
def demo() -> None:
    """Charge les données de démonstration (Corse) — sans effet si elles existent déjà."""
    from carnet.bootstrap import build_services
    from carnet.demo import DEMO_PASSWORD, load_demo
    from carnet.storage.migrate import upgrade

    settings = _settings()
    services = build_services(settings)
    upgrade(settings.resolved_database_url)
    with services.db.unit_of_work() as db:
        logins = load_demo(services, db)
    typer.echo("Données de démonstration prêtes. Identifiants (mot de passe commun : " + DEMO_PASSWORD + ") :")
    for login in logins:
        typer.echo(f"  {login.login:<22} {login.who}")
    if settings.show_dev_pages:
        typer.echo(f"Codes de connexion envoyés par e-mail : {settings.base_url}/dev/boite-mail")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Adresse d'écoute"),
    port: int = typer.Option(8000, help="Port d'écoute"),
    workers: int = typer.Option(1, min=1, max=64, help="Processus serveurs (un par cœur)"),
) -> None:
    """Lance le portail, l'API et FHIR (et les tâches de fond sur l'installation embarquée)."""
    import uvicorn

    from carnet.bootstrap import build_services
    from carnet.jobs.runner import JobRunner
    from carnet.storage.migrate import upgrade

    settings = _settings()
    _logging(settings)
    services = build_services(settings)
    if settings.is_embedded:
        upgrade(settings.resolved_database_url)
    # Background jobs run once, in this process, whatever the number of server processes.
    runner = JobRunner(services) if settings.is_embedded else None
    if runner:
        runner.start()
    typer.echo(f"Carnet écoute sur http://{host}:{port} (données : {settings.resolved_data_dir})")
    # One process: the app shares the runner's services, hence one SQLite lock for both — with two,
    # a request reading then writing could meet "database is locked" after a job's commit.
    if workers == 1:
        from carnet.web.app import create_app

        target: object = create_app(services=services)
    else:
        target = "carnet.web.app:create_app"
    try:
        uvicorn.run(
            target,  # type: ignore[arg-type]
            factory=workers > 1,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_level=settings.log_level.lower(),
            proxy_headers=True,
            server_header=False,
        )
    finally:
        if runner:
            runner.stop()


@audit_app.command("verify")
def audit_verify() -> None:
    """Vérifie l'intégrité de toutes les chaînes du journal d'audit (code de sortie 1 si altéré)."""
    from carnet.hall import audit
    from carnet.storage.db import Database

    settings = _settings()
    db = Database(settings.resolved_database_url)
    with db.unit_of_work() as session:
        chains, breaks = audit.verify(session)
    if breaks:
        typer.echo(f"Journal d'audit ALTÉRÉ : {len(breaks)} anomalie(s) sur {chains} chaîne(s).", err=True)
        for problem in breaks:
            typer.echo(f"  chaîne {problem.chain}, entrée n° {problem.seq} : {problem.problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Journal d'audit intègre : {chains} chaîne(s) vérifiée(s).")


keys_app = typer.Typer(help="Clés de chiffrement (clé maîtresse, clés des patients).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate")
def keys_rotate(batch_size: int = typer.Option(500, min=1, help="Clés re-chiffrées par transaction")) -> None:
    """Renouvelle la clé maîtresse sans interruption de service (relancer la commande reprend une rotation)."""
    from carnet.storage.db import Database
    from carnet.storage.keyring import Keyring, rotate_master_key

    settings = _settings()
    db = Database(settings.resolved_database_url)
    try:
        count = rotate_master_key(db, settings.resolved_master_key_file, batch_size=batch_size)
    except (RuntimeError, KeyError, FileNotFoundError) as exc:
        typer.echo(f"Rotation impossible : {exc.args[0] if exc.args else exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    new_id = Keyring(settings.resolved_master_key_file).current_id
    typer.echo(f"Clé maîtresse renouvelée : {count} clé(s) de patient re-chiffrée(s). Nouvelle clé : {new_id}.")


clients_app = typer.Typer(
    help="Clients de l'API FHIR (établissements, logiciels de professionnels).", no_args_is_help=True
)
app.add_typer(clients_app, name="clients")


@clients_app.command("create")
def clients_create(
    name: str = typer.Option(..., "--name", help="Nom affiché (établissement ou logiciel)"),
    finess: str | None = typer.Option(None, "--finess", help="FINESS de l'établissement"),
    rpps: str | None = typer.Option(None, "--rpps", help="RPPS du professionnel (annuaire)"),
) -> None:
    """Crée un client OAuth 2 (client credentials) et affiche client_id et client_secret en JSON."""
    import json

    from carnet.identity.service.clients import ClientError, create_client
    from carnet.people.model.identifiers import IdentifierError
    from carnet.storage.db import Database

    settings = _settings()
    db = Database(settings.resolved_database_url)
    try:
        with db.unit_of_work() as session:
            created = create_client(session, name, finess=finess, rpps=rpps)
    except (ClientError, IdentifierError) as exc:
        typer.echo(f"Erreur : {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        json.dumps(
            {"client_id": created.client_id, "client_secret": created.client_secret, "name": created.name},
            ensure_ascii=False,
        )
    )


registry_app = typer.Typer(
    help="Registre des assurés (ENR-1) : import du fichier de l'assurance maladie.", no_args_is_help=True
)
app.add_typer(registry_app, name="registry")


@registry_app.command("import")
def registry_import(
    file: str = typer.Argument(..., metavar="FICHIER", help="Fichier CSV en UTF-8, séparateur « ; » ou « , »"),
) -> None:
    """Importe ou met à jour les assurés d'un fichier CSV (code de sortie 1 si des lignes sont rejetées)."""
    import getpass
    from pathlib import Path

    from carnet.enrolment.service.registry import RegistryFileError, import_registry
    from carnet.hall.actors import Actor, ActorKind
    from carnet.storage.db import Database
    from carnet.storage.migrate import upgrade

    settings = _settings()
    if settings.is_embedded:
        upgrade(settings.resolved_database_url)
    path = Path(file)
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "inconnu"
    actor = Actor(ActorKind.OPERATOR, None, f"Opérateur (ligne de commande, compte système {user})")
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    db = Database(settings.resolved_database_url)
    try:
        with typer.progressbar(length=max(size, 1), label="Import du registre", file=sys.stderr) as bar:
            report = import_registry(db, path, actor, progress=bar.update)
    except RegistryFileError as exc:
        typer.echo(f"Erreur : {exc.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    typer.echo(
        f"{report.total} lignes lues, {report.inserted} ajoutées, {report.updated} mises à jour, "
        f"{len(report.rejected)} rejetées."
    )
    shown = 50
    for kind, items, suffix in (
        ("Avertissements (lignes chargées)", [w.message for w in report.warnings], ".avertissements.txt"),
        ("Lignes rejetées", [e.message for e in report.rejected], ".rejets.txt"),
    ):
        listing = path.with_name(path.name + suffix)
        if not items:
            listing.unlink(missing_ok=True)  # a list left by a previous import would mislead
            continue
        typer.echo(f"{kind} :", err=True)
        for message in items[:shown]:
            typer.echo(f"  {message}", err=True)
        if len(items) > shown:
            typer.echo(f"  … et {len(items) - shown} autres", err=True)
        try:
            listing.write_text("\n".join(items) + "\n", encoding="utf-8")
            typer.echo(f"  Liste complète : {listing}", err=True)
        except OSError as exc:
            typer.echo(f"  Liste complète non écrite ({listing}) : {exc.strerror}", err=True)
    if report.rejected:
        raise typer.Exit(1)


campaign_app = typer.Typer(
    help="Campagnes d'invitation par territoire (ENR-2) : e-mails et courriers.", no_args_is_help=True
)
app.add_typer(campaign_app, name="campaign")
spaces_app = typer.Typer(help="Espaces santé des personnes (ENR-3).", no_args_is_help=True)
app.add_typer(spaces_app, name="spaces")


def _operator_services() -> tuple[Services, Actor]:
    """Services and the CLI operator actor (the schema is brought up to date on the embedded default)."""
    import getpass

    from carnet.bootstrap import build_services
    from carnet.hall.actors import Actor, ActorKind
    from carnet.storage.migrate import upgrade

    settings = _settings()
    services = build_services(settings)
    if settings.is_embedded:
        upgrade(settings.resolved_database_url)
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "inconnu"
    return services, Actor(ActorKind.OPERATOR, None, f"Opérateur (ligne de commande, compte système {user})")


def _send_all(services: Services, connections: int, processes: int = 1) -> None:
    from sqlalchemy import func, select

    from carnet.enrolment.service import campaigns
    from carnet.enrolment.tables import Invitation

    with services.db.unit_of_work() as db:
        waiting = db.scalar(
            select(func.count()).where(Invitation.channel == "email", Invitation.status.in_(("pending", "sending")))
        )
    done = {"count": 0}
    with typer.progressbar(length=max(waiting or 0, 1), label="Envoi des e-mails", file=sys.stderr) as bar:

        def progress(report: campaigns.SendReport) -> None:
            bar.update(report.handled - done["count"])
            done["count"] = report.handled

        report = campaigns.send_with_processes(services, processes, connections, on_progress=progress)
    typer.echo(
        f"E-mails envoyés : {report.sent}, refusés (courrier à la place) : {report.bounced + report.to_letter}, "
        f"à réessayer : {report.retried}."
    )
    if report.retried:
        typer.echo("Le serveur SMTP a refusé ou interrompu des envois : relancez « carnet campaign send ».", err=True)


@campaign_app.command("start")
def campaign_start(
    departements: str = typer.Option(..., "--departements", help="Départements, séparés par des virgules (2A,2B)"),
    send: bool = typer.Option(False, "--send", help="Envoyer aussitôt tous les e-mails (barre de progression)"),
    connections: int = typer.Option(4, "--connexions", min=1, max=16, help="Connexions SMTP par processus"),
    processes: int = typer.Option(1, "--processus", min=1, max=16, help="Processus d'envoi (un par cœur)"),
) -> None:
    """Lance une campagne : invite chaque personne enregistrée et pas encore invitée de ces départements."""
    from carnet.enrolment.service import campaigns

    services, actor = _operator_services()
    try:
        try:
            campaign = campaigns.start_campaign(services, departements, actor)
        except campaigns.CampaignError as exc:
            typer.echo(f"Erreur : {exc.message}", err=True)
            raise typer.Exit(2) from None
        counts = campaigns.count_invitations(services, campaign.id)
        typer.echo(
            f"Campagne {campaign.id} ({', '.join(campaign.departements)}) : {sum(counts.values())} personne(s) "
            f"invitée(s), {counts.get('email', 0)} par e-mail, {counts.get('letter', 0)} par courrier."
        )
        if send:
            _send_all(services, connections, processes)
        typer.echo(f"Courriers à produire : carnet campaign letters {campaign.id}")
    finally:
        services.db.dispose()


@campaign_app.command("send")
def campaign_send(
    connections: int = typer.Option(4, "--connexions", min=1, max=16, help="Connexions SMTP par processus"),
    processes: int = typer.Option(1, "--processus", min=1, max=16, help="Processus d'envoi (un par cœur)"),
) -> None:
    """Envoie tous les e-mails d'invitation en attente (reprend sans perte après une interruption)."""
    services, _ = _operator_services()
    try:
        _send_all(services, connections, processes)
    finally:
        services.db.dispose()


@campaign_app.command("letters")
def campaign_letters(
    campaign_id: str = typer.Argument(..., metavar="CAMPAGNE", help="Identifiant de la campagne"),
    batch_size: int = typer.Option(1000, "--par-lot", min=1, max=10000, help="Courriers par fichier PDF"),
) -> None:
    """Produit les courriers en attente de la campagne : un PDF par lot, à remettre à l'imprimeur."""
    from carnet.enrolment.service import campaigns

    services, actor = _operator_services()
    try:
        if not campaigns.campaign_progress(services, actor, campaign_id):
            typer.echo("Erreur : campagne inconnue.", err=True)
            raise typer.Exit(2)
        batches = campaigns.render_pending_letters(services, campaign_id, batch_size=batch_size)
    finally:
        services.db.dispose()
    for batch in batches:
        typer.echo(f"  {batch.path} ({batch.count} courrier(s))")
    typer.echo(f"{sum(b.count for b in batches)} courrier(s) produit(s) en {len(batches)} lot(s).")


@spaces_app.command("open")
def spaces_open(ins: str = typer.Argument(..., metavar="INS", help="Matricule INS (NIR, 15 caractères)")) -> None:
    """Ouvre aussitôt l'espace d'une personne enregistrée, sans attendre la fin des 6 semaines (journalisé)."""
    from carnet.enrolment.service import campaigns

    services, actor = _operator_services()
    try:
        opened = campaigns.open_space(services, actor, ins)
    except campaigns.CampaignError as exc:
        typer.echo(f"Refusé : {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        services.db.dispose()
    typer.echo("L'espace était déjà ouvert." if opened.already else "Espace ouvert.")


professionals_app = typer.Typer(
    help="Annuaire des professionnels de santé (ACC-1) : ajout par RPPS, import de l'Annuaire Santé (ANS).",
    no_args_is_help=True,
)
app.add_typer(professionals_app, name="professionals")


@professionals_app.command("add")
def professionals_add(
    rpps: str = typer.Option(..., "--rpps", help="Numéro RPPS (11 chiffres)"),
    nom: str = typer.Option(..., "--nom", help="Nom d'exercice"),
    prenom: str = typer.Option(..., "--prenom", help="Prénom d'exercice"),
    profession: str = typer.Option(
        ...,
        "--profession",
        help="Code profession TRE_G15 : 10 médecin, 21 pharmacien, 40 chirurgien-dentiste, "
        "50 sage-femme, 60 infirmier, 70 masseur-kinésithérapeute…",
    ),
    specialite: str | None = typer.Option(None, "--specialite", help="Spécialité (savoir-faire), facultative"),
    samu: bool | None = typer.Option(
        None, "--samu/--non-samu", help="Médecin régulateur du SAMU (inchangé si omis ; non pour un nouveau)"
    ),
) -> None:
    """Ajoute un professionnel à l'annuaire, ou le met à jour si son RPPS y est déjà (journalisé)."""
    from carnet.access.service.directory import DirectoryError, add_professional
    from carnet.people.model.professions import profession_label

    services, actor = _operator_services()
    try:
        with services.db.unit_of_work() as db:
            added = add_professional(
                db,
                actor,
                rpps=rpps,
                last_name=nom,
                first_name=prenom,
                profession_code=profession,
                specialty=specialite,
                samu_regulator=samu,
            )
    except DirectoryError as exc:
        typer.echo(f"Erreur : {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        services.db.dispose()
    what = "ajouté à l'annuaire" if added.created else "mis à jour dans l'annuaire"
    samu_note = ", régulateur du SAMU" if added.samu_regulator else ""
    who = f"{added.first_name} {added.last_name}, {profession_label(added.profession_code).lower()}{samu_note}"
    typer.echo(f"Professionnel {what} : RPPS {added.rpps} ({who}).")


@professionals_app.command("import")
def professionals_import(
    file: str = typer.Argument(
        ..., metavar="FICHIER", help="Extraction PS_LibreAcces_Personne_activite_<date>.txt (séparateur « | »)"
    ),
) -> None:
    """Importe ou met à jour l'annuaire depuis l'extraction de l'Annuaire Santé (sortie 1 : lignes rejetées)."""
    from pathlib import Path

    from carnet.access.service.directory import DirectoryFileError, import_directory

    services, actor = _operator_services()
    path = Path(file)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    try:
        with typer.progressbar(length=max(size, 1), label="Import de l'annuaire", file=sys.stderr) as bar:
            report = import_directory(services.db, path, actor, progress=bar.update)
    except DirectoryFileError as exc:
        typer.echo(f"Erreur : {exc.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        services.db.dispose()
    typer.echo(
        f"{report.total} lignes lues, {report.inserted} professionnels ajoutés, {report.updated} mis à jour, "
        f"{report.other_activities} lignes d'activités supplémentaires, {report.without_rpps} lignes sans RPPS "
        f"ignorées, {len(report.rejected)} rejetées."
    )
    listing = path.with_name(path.name + ".rejets.txt")
    if not report.rejected:
        listing.unlink(missing_ok=True)  # a list left by a previous import would mislead
        return
    shown = 50
    typer.echo("Lignes rejetées :", err=True)
    for error in report.rejected[:shown]:
        typer.echo(f"  {error.message}", err=True)
    if len(report.rejected) > shown:
        typer.echo(f"  … et {len(report.rejected) - shown} autres", err=True)
    try:
        listing.write_text("\n".join(error.message for error in report.rejected) + "\n", encoding="utf-8")
        typer.echo(f"  Liste complète : {listing}", err=True)
    except OSError as exc:
        typer.echo(f"  Liste complète non écrite ({listing}) : {exc.strerror}", err=True)
    raise typer.Exit(1)


teams_app = typer.Typer(
    help="Équipes de soins (ACC-1) : groupes nommés de professionnels d'un établissement, qu'un patient peut "
    "autoriser en bloc.",
    no_args_is_help=True,
)
app.add_typer(teams_app, name="teams")


def _teams_run(work: Callable[[Session, Actor], str]) -> None:
    """Run one change (or listing) in a transaction as the CLI operator; French error, exit 1."""
    from carnet.access.service.care_teams import CareTeamError

    services, actor = _operator_services()
    try:
        with services.db.unit_of_work() as db:
            out = work(db, actor)
    except CareTeamError as exc:
        typer.echo(f"Erreur : {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        services.db.dispose()
    typer.echo(out)


@teams_app.command("create")
def teams_create(
    nom: str = typer.Option(..., "--nom", help="Nom de l'équipe (ex. « Équipe mobile de soins palliatifs »)"),
    finess: str = typer.Option(..., "--finess", help="FINESS de l'établissement (déjà connu de Carnet)"),
) -> None:
    """Crée une équipe de soins et affiche son identifiant seul (journalisé)."""
    from carnet.access.service import care_teams

    def work(db: Session, actor: Actor) -> str:
        team = care_teams.create(db, actor, nom, finess)
        typer.echo(f"Équipe de soins « {team.name} » créée.", err=True)
        return team.id

    _teams_run(work)


@teams_app.command("add-member")
def teams_add_member(
    team_id: str = typer.Argument(..., metavar="EQUIPE", help="Identifiant de l'équipe (carnet teams list)"),
    rpps: str = typer.Option(..., "--rpps", help="RPPS du professionnel (annuaire)"),
) -> None:
    """Ajoute un professionnel de l'annuaire à l'équipe : il lit aussitôt les espaces qui ont autorisé
    l'équipe (journalisé)."""
    from carnet.access.service import care_teams

    def work(db: Session, actor: Actor) -> str:
        pro, added = care_teams.add_member(db, actor, team_id, rpps)
        who = f"{pro.first_name} {pro.last_name} (RPPS {pro.rpps})"
        return f"{who} ajouté(e) à l'équipe." if added else f"{who} fait déjà partie de l'équipe."

    _teams_run(work)


@teams_app.command("remove-member")
def teams_remove_member(
    team_id: str = typer.Argument(..., metavar="EQUIPE", help="Identifiant de l'équipe (carnet teams list)"),
    rpps: str = typer.Option(..., "--rpps", help="RPPS du professionnel"),
) -> None:
    """Retire un professionnel de l'équipe : son accès par l'équipe cesse aussitôt (journalisé)."""
    from carnet.access.service import care_teams

    def work(db: Session, actor: Actor) -> str:
        pro = care_teams.remove_member(db, actor, team_id, rpps)
        return f"{pro.first_name} {pro.last_name} (RPPS {pro.rpps}) retiré(e) de l'équipe."

    _teams_run(work)


@teams_app.command("list")
def teams_list(
    finess: str | None = typer.Option(None, "--finess", help="Seulement les équipes de cet établissement"),
) -> None:
    """Liste les équipes de soins et leurs membres."""
    from carnet.access.service import care_teams

    def work(db: Session, actor: Actor) -> str:
        teams = care_teams.list_teams(db, finess)
        if not teams:
            return "Aucune équipe de soins."
        lines = []
        for team in teams:
            place = f"{team.establishment} (FINESS {team.finess})" if team.finess else "sans établissement"
            lines.append(f"{team.id}  {team.name} — {place} — {len(team.members)} membre(s)")
            lines += [f"    RPPS {m.rpps}  {m.name}, {m.profession.lower()}" for m in team.members]
        return "\n".join(lines)

    _teams_run(work)


def main() -> None:  # pragma: no cover
    app(sys.argv[1:])
