"""Texts the console shows people: the R156 pre-activation notice and the privacy notice.

Pure functions over core values, so the demo, the tests and a real catalog produce the same notice
for the same feature. Privacy texts exist per notice language of the market profile; a language
without a translation falls back to English and says so (never a blank notice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from forecourt.core import Catalog, DataCategory, EcuRole, Feature, Market
from forecourt.edge.app.services import FeatureNotice

#: What a driver loses while an ECU of this role receives data and applies it.
_UNAVAILABLE: Mapping[EcuRole, tuple[str, ...]] = MappingProxyType(
    {
        EcuRole.CGW: ("vehicle start (the gateway restarts)", "charging"),
        EcuRole.TBOX: ("remote app functions", "emergency call via the T-Box (use a phone)"),
        EcuRole.HEAD_UNIT: ("infotainment screen", "navigation", "voice assistant"),
        EcuRole.ADAS: ("driver assistance (cruise control, lane keeping)",),
    }
)
_CHANGED: Mapping[EcuRole, str] = MappingProxyType(
    {
        EcuRole.CGW: "central gateway configuration",
        EcuRole.TBOX: "telematics unit (T-Box) configuration",
        EcuRole.HEAD_UNIT: "head unit software and settings",
        EcuRole.ADAS: "driver assistance domain controller",
    }
)
#: Seconds per ECU for authentication, transfer and apply at line rate, plus a package transfer.
_SECONDS_PER_ECU = 20
_SECONDS_PER_PACKAGE = 40


def feature_notice(feature: Feature) -> FeatureNotice:
    """The R156 notice of one catalog feature, derived from the ECUs and packages it touches."""
    roles = sorted(feature.required_roles, key=lambda r: r.value)
    unavailable: list[str] = []
    for role in roles:
        unavailable.extend(u for u in _UNAVAILABLE[role] if u not in unavailable)
    changed = [f"{_CHANGED[r]}: {feature.name} enabled" for r in roles]
    changed += [
        f"{n.package_type.value} package installed on {n.role.value}" for n in feature.package_needs
    ]
    purpose = f"Enable {feature.name} ({feature.licence.kind.value} licence)"
    if feature.affects_type_approval:
        purpose += "; this unlock is assessed against the vehicle's type approval"
    return FeatureNotice(
        code=feature.code,
        name=feature.name,
        purpose=purpose,
        changed_functions=tuple(changed),
        expected_duration_s=_SECONDS_PER_ECU * len(roles)
        + _SECONDS_PER_PACKAGE * len(feature.package_needs),
        unavailable_meanwhile=tuple(unavailable),
        data_categories=tuple(sorted(c.value for c in feature.data_categories)),
        affects_type_approval=feature.affects_type_approval,
    )


def feature_notices(catalog: Catalog, market: Market) -> tuple[FeatureNotice, ...]:
    """Notices of every feature offered in ``market``, ordered by code."""
    offered = [f for f in catalog.features if any(o.market is market for o in f.offers)]
    return tuple(feature_notice(f) for f in sorted(offered, key=lambda f: f.code))


@dataclass(frozen=True, slots=True)
class CategoryText:
    title: str
    purpose: str


_D = DataCategory
_EN: Mapping[DataCategory, CategoryText] = {
    _D.LOCATION: CategoryText("Location", "Find the car, remote functions and live traffic."),
    _D.TRAJECTORY: CategoryText("Trips and routes", "Navigation history and stolen-car tracking."),
    _D.AUDIO_VOICE: CategoryText("Voice", "The voice assistant hears your commands."),
    _D.VIDEO_CAMERA: CategoryText("Cameras", "Driver assistance and parking images."),
    _D.BIOMETRICS: CategoryText("Biometrics", "Driver attention monitoring by face image."),
    _D.DRIVING_BEHAVIOUR: CategoryText(
        "Driving behaviour", "Assistance tuning and usage-based insurance."
    ),
    _D.VEHICLE_DIAGNOSTICS: CategoryText(
        "Vehicle diagnostics", "Fault codes for service and safety recalls."
    ),
    _D.CONTACT_DATA: CategoryText("Contact data", "Digital key sharing and account recovery."),
    _D.USAGE: CategoryText("Usage", "Which functions are used, to improve them."),
}
_DE: Mapping[DataCategory, CategoryText] = {
    _D.LOCATION: CategoryText("Standort", "Fahrzeug finden, Fernfunktionen und Verkehrslage."),
    _D.TRAJECTORY: CategoryText("Fahrten und Routen", "Navigationsverlauf und Diebstahlortung."),
    _D.AUDIO_VOICE: CategoryText("Sprache", "Der Sprachassistent hört Ihre Befehle."),
    _D.VIDEO_CAMERA: CategoryText("Kameras", "Fahrerassistenz und Parkbilder."),
    _D.BIOMETRICS: CategoryText("Biometrie", "Aufmerksamkeitsüberwachung per Gesichtsbild."),
    _D.DRIVING_BEHAVIOUR: CategoryText(
        "Fahrverhalten", "Abstimmung der Assistenz und nutzungsbasierte Versicherung."
    ),
    _D.VEHICLE_DIAGNOSTICS: CategoryText(
        "Fahrzeugdiagnose", "Fehlercodes für Service und Rückrufe."
    ),
    _D.CONTACT_DATA: CategoryText(
        "Kontaktdaten", "Digitaler Schlüssel und Kontowiederherstellung."
    ),
    _D.USAGE: CategoryText("Nutzung", "Welche Funktionen genutzt werden, um sie zu verbessern."),
}
_ZH: Mapping[DataCategory, CategoryText] = {
    _D.LOCATION: CategoryText("位置", "寻车、远程功能和实时路况。"),
    _D.TRAJECTORY: CategoryText("行程与轨迹", "导航历史和被盗车辆追踪。"),
    _D.AUDIO_VOICE: CategoryText("语音", "语音助手识别您的指令。"),
    _D.VIDEO_CAMERA: CategoryText("摄像头", "驾驶辅助和泊车影像。"),
    _D.BIOMETRICS: CategoryText("生物特征", "通过面部图像进行驾驶员注意力监测。"),
    _D.DRIVING_BEHAVIOUR: CategoryText("驾驶行为", "辅助系统调校和按使用付费保险。"),
    _D.VEHICLE_DIAGNOSTICS: CategoryText("车辆诊断", "用于维修和召回的故障码。"),
    _D.CONTACT_DATA: CategoryText("联系方式", "数字钥匙分享和账户找回。"),
    _D.USAGE: CategoryText("使用情况", "了解功能使用情况以改进功能。"),
}
_ES: Mapping[DataCategory, CategoryText] = {
    _D.LOCATION: CategoryText("Ubicación", "Localizar el coche, funciones remotas y tráfico."),
    _D.TRAJECTORY: CategoryText("Viajes y rutas", "Historial de navegación y rastreo por robo."),
    _D.AUDIO_VOICE: CategoryText("Voz", "El asistente de voz escucha sus órdenes."),
    _D.VIDEO_CAMERA: CategoryText(
        "Cámaras", "Asistencia a la conducción e imágenes de aparcamiento."
    ),
    _D.BIOMETRICS: CategoryText("Biometría", "Supervisión de la atención del conductor."),
    _D.DRIVING_BEHAVIOUR: CategoryText(
        "Conducción", "Ajuste de la asistencia y seguro basado en el uso."
    ),
    _D.VEHICLE_DIAGNOSTICS: CategoryText(
        "Diagnóstico del vehículo", "Códigos de avería para servicio y revisiones."
    ),
    _D.CONTACT_DATA: CategoryText("Datos de contacto", "Llave digital y recuperación de cuenta."),
    _D.USAGE: CategoryText("Uso", "Qué funciones se usan, para mejorarlas."),
}
_TEXTS: Mapping[str, Mapping[DataCategory, CategoryText]] = {
    "en": _EN,
    "en-US": _EN,
    "de": _DE,
    "zh-CN": _ZH,
    "es": _ES,
    "es-US": _ES,
}


def category_texts(language: str) -> tuple[Mapping[DataCategory, CategoryText], bool]:
    """Texts in ``language`` and whether they are a translation (False: English fallback)."""
    texts = _TEXTS.get(language)
    if texts is None:
        return _EN, False
    return texts, True
