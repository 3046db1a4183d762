"""The interface in English or Russian, chosen per user (Settings). English is the source text; a string with no
Russian yet is shown in English. Evidence and labels stored in annotations stay as they are; sentences the server
composes are translated where they are shown (SENTENCES, below)."""

from __future__ import annotations

import functools
import re
from typing import Any

from jinja2 import pass_context

LANGUAGES = {"en": "English", "ru": "Русский"}

RU: dict[str, str] = {
    "read as": "прочитано как",
    "The overlay reads this camera so; an investigator corrected the name on the timeline page.":
        "Так камеру прочитали с экранной надписи; следователь исправил название на странице хронологии.",
    "Queue": "Очередь", "Search": "Поиск", "Timeline & gaps": "Хронология и пропуски", "Complaints": "Жалобы",
    "Redactions": "Обезличивание", "Settings": "Настройки", "Log out": "Выйти", "? keys": "? клавиши",
    "Keys": "Клавиши", "Review queue": "Очередь просмотра", "reviewed": "просмотрено", "segments": "фрагментов",
    "of": "из", "Min score": "Мин. оценка", "Camera": "Камера", "State": "Состояние", "all": "все",
    "Filter": "Показать", "score": "оценка", "video": "видео", "camera": "камера", "clock": "время",
    "segment": "фрагмент", "why": "почему", "state": "состояние", "content warning": "тяжёлое содержание",
    "unreviewed": "не просмотрен", "nothing of concern": "ничего тревожного", "annotated": "размечен",
    "second review wanted": "нужен второй просмотр", "confirmed": "подтверждён", "disputed": "оспорен",
    "Play": "Играть", "Previous (p)": "Назад (p)", "Next (n)": "Дальше (n)",
    "Hold to reveal (r)": "Удерживать — показать (r)",
    "Nothing of concern, next (x)": "Ничего тревожного, дальше (x)", "Second review (w)": "Второй просмотр (w)",
    "Segments (g)": "Фрагменты (g)", "Transcript (t)": "Расшифровка (t)", "Annotations (a)": "Разметка (a)",
    "Label": "Метка", "choose (1–7)": "выберите (1–7)", "From": "С", "To": "По", "person (pseudonym)":
    "человек (псевдоним)", "role": "роль", "+ person": "+ человек", "Note": "Заметка", "Save (Ctrl+Enter)":
    "Сохранить (Ctrl+Enter)", "No annotations yet.": "Разметки пока нет.", "No flagged segments.":
    "Отмеченных фрагментов нет.", "No transcript for this item.": "Расшифровки нет.", "Contact sheet": "Раскадровка",
    "Origins": "Происхождение", "flagged segment": "отмеченный фрагмент", "annotation": "разметка", "cut": "склейка",
    "marked in/out": "отметка начала/конца", "loudness": "громкость", "Safe viewing": "Бережный просмотр",
    "Blur pictures": "Размывать изображение",
    "Grey (no colour)": "Серым (без цвета)", "Start videos muted": "Видео без звука", "Language": "Язык",
    "Save settings": "Сохранить настройки", "Saved.": "Сохранено.", "Content warning: flagged as likely violent.":
    "Внимание: вероятно, насилие.", "change": "изменить", "Back to the queue": "Назад к очереди",
    "Editing annotation": "Правка разметки", "cancel": "отмена", "edit": "править", "by": "автор",
    "play / pause (anywhere but a text box)": "играть / пауза (везде, кроме полей ввода)",
    "back / forward 5 s (with Shift: 1 s)": "назад / вперёд 5 с (с Shift: 1 с)",
    "next / previous flagged segment in the whole queue (goes to the next file)":
        "следующий / предыдущий фрагмент во всей очереди (переходит в следующий файл)",
    "mark in / mark out (shown on the strip, fills the form)": "отметить начало / конец (на шкале и в форме)",
    "save the annotation": "сохранить разметку",
    "nothing of concern in this segment, go to the next": "в этом фрагменте ничего тревожного, дальше",
    "second review wanted for this segment": "нужен второй просмотр фрагмента",
    "second review: confirm / dispute what another reviewer recorded":
        "второй просмотр: подтвердить / оспорить решение другого",
    "Confirm (c)": "Подтвердить (c)", "Dispute (d)": "Оспорить (d)",
    "reveal: no blur or grey while held": "показать без размытия, пока удерживаете",
    "segments / transcript / annotations tab": "вкладки фрагменты / расшифровка / разметка",
    "next / previous row on the queue page; Enter opens it": "строка очереди вниз / вверх; Enter открывает",
    "show or hide this help; Esc closes it": "показать или скрыть подсказку; Esc закрывает",
    # the team server
    "Cases": "Дела", "Your cases": "Ваши дела", "Users and cases": "Пользователи и дела", "My queue": "Моя очередь",
    "Assign the videos on this page to": "Поручить видео с этой страницы", "nobody": "никому", "Assign": "Поручить",
    "You are not a member of any case yet: ask an admin to add you to one.":
        "Вы пока не участвуете ни в одном деле: попросите администратора добавить вас.",
    "Add a user": "Добавить пользователя", "User name": "Имя пользователя", "Password": "Пароль",
    "Add user": "Добавить", "Remove from this case": "Убрать из дела", "Add to this case": "Добавить в дело",
    "A user of this server logs in here and sees only the cases they are a member of.":
        "Пользователь сервера входит здесь и видит только дела, в которых участвует.",
    "Passwords need at least": "Пароль — не меньше", "characters; give it to the person by a safe channel.":
        "символов; передайте его человеку надёжным способом.",
    "Change password": "Сменить пароль", "Current password": "Нынешний пароль", "New password": "Новый пароль",
    "New password again": "Новый пароль ещё раз", "Reset password": "Сбросить пароль",
    "An admin set your password, so they know it: choose one of your own before you go on. Nothing else opens "
    "until you do.": "Ваш пароль задал администратор, и он его знает: прежде чем продолжить, выберите свой. "
                     "До этого ничего другого не откроется.",
    "Your password is changed. Every other session of yours has ended.":
        "Пароль изменён. Все другие ваши сеансы завершены.",
    "characters. Your other sessions end when you change it.":
        "символов. При смене пароля другие ваши сеансы завершатся.",
    "At their first login they must choose their own.": "При первом входе человек должен выбрать свой пароль.",
    # the team server's sentences on the password page ({n}: a length limit)
    "This form had expired (it was opened before you last logged in, or in another window): fill it in again.":
        "Форма устарела (её открыли до последнего входа или в другом окне): заполните её ещё раз.",
    "Fill in all three fields: your current password, then the new one twice.":
        "Заполните все три поля: нынешний пароль, затем новый дважды.",
    "The new password has fewer than {n} characters: choose a longer one.":
        "В новом пароле меньше {n} символов: выберите пароль длиннее.",
    "The new password has more than {n} characters: choose a shorter one.":
        "В новом пароле больше {n} символов: выберите пароль короче.",
    "The two new passwords differ: type the same new password twice.":
        "Два новых пароля не совпадают: введите один и тот же новый пароль дважды.",
    "The new password is the one you have now: choose another.": "Новый пароль совпадает с нынешним: выберите другой.",
    "The current password is wrong: type the one you logged in with.":
        "Нынешний пароль неверен: введите тот, с которым вы вошли.",
    "Too many failed logins for this user name or address: wait 15 minutes and try again.":
        "Слишком много неудачных попыток входа для этого имени или адреса: подождите 15 минут и попробуйте снова.",
    # the timeline page (web/timeline_view.py, templates/timeline.html)
    "Timeline and gaps": "Хронология и пропуски", "Cameras over time": "Камеры во времени",
    "zoom in (+)": "крупнее (+)", "zoom out (−)": "мельче (−)", "whole case (0)": "всё дело (0)",
    "whole case": "всё дело", "recording": "запись", "gap": "пропуск",
    "Timeline: + and − zoom, arrow keys move, click opens the moment":
    "Хронология: + и − меняют масштаб, стрелки сдвигают, щелчок открывает этот момент",
    "Scroll or + / − to zoom, drag or ← → to move; click a recording or a segment to open it at that moment.":
    "Колесо мыши или + / − меняют масштаб, перетаскивание или ← → сдвигают; щелчок по записи или фрагменту "
    "открывает её в этот момент.",
    "files have no clock time and are not on the timeline.": "файлов без времени на кадре не показаны на хронологии.",
    "Cameras": "Камеры", "read on the footage as": "прочитано на кадре как", "files": "файлы", "gaps": "пропуски",
    "correct the name, or merge into another camera": "исправить название или объединить с другой камерой",
    "new name": "новое название", "e.g. OCR read 0 as O": "напр.: распознано O вместо 0", "Rename": "Переименовать",
    "Gaps: time with no recording": "Пропуски: время без записи", "none found": "не найдено",
    "Several cameras at once": "Несколько камер одновременно", "none": "нет",
}
# near-duplicate copies (custodes.dupes.store): the queue's "+N copies", the workspace's copies panel
RU.update({"copies": "копии", "covered by review of": "покрыт просмотром", "at": "на",
           "Copies of this footage": "Копии этой записи", "this file starts at": "этот файл начинается на",
           "in it": "в ней", "speed": "скорость", "source (longest)": "исходник (самый длинный)",
           "copy / re-encode": "копия / перекодирование", "clip": "фрагмент записи"})
# changing one's own password in a case served alone (web/password_view.py; its refusals are the team server's)
RU.update({"Your password was changed.": "Ваш пароль изменён.",
           "Every other session of yours has ended.": "Все другие ваши сеансы завершены."})


def lookup(lang: str, text: str) -> str:
    """``text`` in ``lang``: a template's word or sentence as it is in RU, else a sentence the server composed,
    matched against SENTENCES' templates (their numbers, names and labels kept as they were)."""
    if lang != "ru" or not text:
        return text
    if text in RU:
        return RU[text]
    return _composed_ru(text)


# a queue page words a few dozen distinct reasons over and over (every row's): each is matched once
@functools.lru_cache(maxsize=8192)
def _composed_ru(text: str) -> str:
    for pattern, ru in _patterns():
        m = pattern.fullmatch(text)
        if m is not None:
            return ru.format(**{k: _slot("ru", k, x) for k, x in m.groupdict().items()})
    return text


def _slot(lang: str, name: str, value: str) -> str:
    if name not in SLOTS:  # a number, a name, a label, a clock time: as it is
        return value
    words = SLOTS[name]
    if words is None:  # a sentence or a word of its own (a review state, what a clock jump lost)
        return lookup(lang, value)
    return words.get(value, value)


_compiled: list[tuple[re.Pattern[str], str]] = []


def _patterns() -> list[tuple[re.Pattern[str], str]]:
    """SENTENCES as regular expressions: each {name} matches the shortest text that lets the rest match."""
    if not _compiled:
        for en, ru in SENTENCES.items():
            parts = re.split(r"\{(\w+)\}", en)
            rx = "".join(re.escape(x) if i % 2 == 0 else f"(?P<{x}>.+?)" for i, x in enumerate(parts))
            _compiled.append((re.compile(rx, re.DOTALL), ru))
    return _compiled


@pass_context
def gettext(ctx: Any, text: str) -> str:
    """``{{ _("Queue") }}`` in a template: in the language of the user the page is for."""
    v = ctx.get("v") or ctx.get("tv")  # a case's page, or a team server's own page
    return lookup(getattr(v, "lang", "en"), text)
# the rest of the templates' text (issue 22): the header and help overlay (base.html), the queue's pager, the
# workspace's notes, tooltips and alt texts (item.html), search, complaints, redactions, the error page's headings
# (app.py's and team.py's error_page) and the 404 sentence, the roles shown after a user's name
RU.update({
    # roles (web/users.py), shown as "name (role)"
    "admin": "администратор", "investigator": "следователь", "reviewer": "проверяющий", "viewer": "наблюдатель",
    # base.html
    "safe viewing and other settings": "бережный просмотр и другие настройки",
    "keyboard shortcuts (?)": "клавиши (?)", "Keyboard shortcuts": "Клавиши",
    "You have been reviewing for a while. Take a break — step away from the screen for a few minutes.":
        "Вы уже давно смотрите записи. Сделайте перерыв — отойдите от экрана на несколько минут.",
    "Space": "Пробел", "Ctrl+Enter, or s": "Ctrl+Enter или s", "hold r": "удерживать r",
    # the labels themselves stay English (they are stored so in annotations and shown so in the form's list)
    "choose a label: 1 beating · 2 sexual violence · 3 stress position · 4 humiliation · 5 threats · "
    "6 medical neglect · 7 other":
        "выбрать метку: 1 beating (избиение) · 2 sexual violence (сексуальное насилие) · "
        "3 stress position (стрессовая поза) · 4 humiliation (унижение) · 5 threats (угрозы) · "
        "6 medical neglect (отказ в медицинской помощи) · 7 other (другое)",
    # queue.html
    "Nothing in the queue. Run": "Очередь пуста. Запустите", "on the case.": "для этого дела.",
    "← previous": "← назад", "next →": "дальше →", "page": "страница",
    # item.html
    "This is a {kind} copy of": "Это {kind} копия записи", "redacted": "обезличенная",
    ", made by {by} at {at}.": "; её создал(а) {by}, {at}.", "The original is unchanged.": "Оригинал не изменён.",
    "blur": "размытие", "grey": "без цвета", "muted": "без звука", "off": "выключен",
    "The picture changes abruptly (a camera switch, an edit or a jump in time) at":
        "Изображение резко меняется (смена камеры, монтаж или скачок во времени) на",
    "(or in the seconds before: found between keyframes)":
        "(или за несколько секунд до этого: найдено между опорными кадрами)",
    "Signs of editing inside this file:": "Признаки монтажа внутри файла:",
    "Recording missing on {camera} after this file: {n} s until {t}.":
        "Нет записи с камеры {camera} после этого файла: {n} с, до {t}.",
    "Recording missing on {camera} before this file: {n} s since {t}.":
        "Нет записи с камеры {camera} перед этим файлом: {n} с, начиная с {t}.",
    "revealed while held": "показано без защиты, пока удерживаете",
    "clock time from the overlay at the playhead": "время с экранной надписи в текущем кадре",
    "c: agree with the review before yours": "c: согласиться с предыдущим просмотром",
    "d: disagree with the review before yours": "d: не согласиться с предыдущим просмотром",
    "This item is a PDF document.": "Это документ PDF.",
    "This item is not a video, an image or text.": "Это не видео, не изображение и не текст.",
    "It is not opened in the review app, to keep your browser safe:":
        "Ради безопасности вашего браузера он не открывается в программе просмотра:",
    "download it": "скачайте его", "and open it in a viewer you trust, away from the network.":
        "и откройте в надёжной программе на компьютере без подключения к сети.",
    "this file at {t} s": "этот файл на {t} с", "{name} at {t} s": "{name} на {t} с",
    "contact sheet": "раскадровка", "s or hh:mm:ss": "с или чч:мм:сс", "edits": "правка",
    "superseded": "заменена", "the whole recording: click to go there": "вся запись: щёлкните, чтобы перейти",
    # settings.html
    "Each on its own, for every video, thumbnail and contact sheet. Hold":
        "Каждый параметр по отдельности — для всех видео, миниатюр и раскадровок. Удерживайте",
    "(or the Reveal button) to see a picture as it is for a moment.":
        "(или кнопку «Показать»), чтобы на мгновение увидеть изображение как есть.",
    # search.html; the kinds of hit (custodes.search.index)
    "words in transcripts, overlays, notes, annotations": "слова в расшифровках, экранных надписях, заметках, разметке",
    "{n} hit(s)": "Найдено: {n}", "transcript": "расшифровка", "overlay": "экранная надпись", "note": "заметка",
    # complaints.html; the flags (custodes.timeline.complaints)
    "Complaints register": "Реестр жалоб", "Import with": "Импорт: команда",
    "A complaint is flagged when no recording covers its time or a recording is missing exactly then.":
        "Жалоба отмечается, если её время не покрыто ни одной записью или запись пропадает именно тогда.",
    "ref": "№", "when": "когда", "where": "где", "person": "человек", "complaint": "жалоба",
    "covered by": "записи за это время", "flags": "отметки", "No complaints imported.": "Жалобы не импортированы.",
    "recording missing during the complaint window": "запись отсутствует во время, указанное в жалобе",
    "no recording covers the complaint window": "ни одна запись не покрывает время, указанное в жалобе",
    # redactions.html
    "Redacted copies": "Обезличенные копии", "Made with": "Созданы командой",
    "Before publishing, look at each frame below: these are where face detection was least confident.":
        "Перед публикацией просмотрите каждый кадр ниже: в них распознавание лиц было наименее уверенным.",
    "faces {faces}, audio {audio}, {n} of {m} frames with faces · by {by} at {at} · original":
        "лица: {faces}, звук: {audio}, кадров с лицами: {n} из {m} · создал(а) {by}, {at} · оригинал",
    "open the redacted copy": "открыть обезличенную копию", "frame at {t} s": "кадр на {t} с",
    "confidence": "уверенность", "No faces were detected: check the copy by eye.":
        "Лица не обнаружены: проверьте копию вручную.", "No redacted copies yet.": "Обезличенных копий пока нет.",
    # error.html: the headings error_page gives (web/app.py, web/team.py) and the 404 sentence
    "Not found": "Не найдено", "Not allowed": "Нет доступа", "Too many tries": "Слишком много попыток",
    "Not available": "Недоступно", "That did not work": "Не получилось",
    "There is no such page or item in this case: check the address, or go back to the queue.":
        "В этом деле нет такой страницы или материала: проверьте адрес или вернитесь к очереди.",
    # api_docs.html (the summaries of the endpoints stay English: they are the API's own description)
    "Every endpoint needs a logged-in session; POSTs need the session's CSRF token in":
        "Каждый адрес требует входа в систему; запросам POST нужен CSRF-токен сеанса в заголовке",
    "The machine-readable description is": "Машиночитаемое описание:",
    "method": "метод", "path": "адрес", "what": "что делает",
})
# a damaged or unreadable media file's page (item.html)
RU.update({"This file could not be opened as video or sound:": "Этот файл не удалось открыть как видео или звук:"})
# the complaints page: a complaint about one camera, and the other cameras recording then (timeline/complaints.py)
RU.update({"no recording of this camera covers the complaint window":
           "ни одна запись этой камеры не покрывает время, указанное в жалобе",
           "Other cameras recording then:": "В это время записывали другие камеры:"})

# Sentences the server composes (web/app.py's refusals and the views' ones, triage's reasons as
# triage/reasons.py words them, analyze.edits' findings), translated where they are shown: an English template
# with {names} for what varies, and its Russian. Keys must stay word for word what the code writes, so a
# sentence changed there without here shows in English rather than wrongly (tests/web/test_russian_server.py).
SENTENCES: dict[str, str] = {
    # refusals of the review app (web/app.py)
    "log in first": "Сначала войдите в систему.",
    "bad or missing CSRF token": "Запрос отклонён: нет проверочного токена формы (CSRF) или он неверен. Обновите "
                                 "страницу и повторите.",
    "Only an investigator or an admin assigns videos.": "Поручать видео может только следователь или администратор.",
    "Name between 1 and 1000 videos to assign.": "Укажите от 1 до 1000 видео, которые нужно поручить.",
    "{who} is not a reviewer, investigator or admin of this case: choose someone from the list.":
        "{who} — не проверяющий, не следователь и не администратор этого дела: выберите человека из списка.",
    "items must be a list of SHA-256 digests.": "Поле items должно быть списком хешей SHA-256.",
    "Assigned {n} video to {who}.": "Поручено пользователю {who}: видео — {n}.",
    "Assigned {n} videos to {who}.": "Поручено пользователю {who}: видео — {n}.",
    "{n} video no longer assigned to anyone.": "Видео больше никому не поручено: {n}.",
    "{n} videos no longer assigned to anyone.": "Видео больше никому не поручены: {n}.",
    "There is no such segment in this case.": "В этом деле нет такого фрагмента.",
    "bad range": "Неверный диапазон байтов.", "range not satisfiable": "Такого диапазона байтов в файле нет.",
    "This item is not a video: there is no picture to show.": "Это не видео: изображения нет.",
    "no decodable frame": "Кадр не удалось декодировать.",
    "The {which} time {value} is not a clock time: write it like 14:03:07.":
        "Время {which} {value} — не время суток: пишите так: 14:03:07.",
    "The {which} time {value} is outside this recording, which runs from {clock} for {n} s.":
        "Время {which} {value} вне этой записи: она идёт с {clock}, длится {n} с.",
    "This recording has no clock from its overlay: give the {which} time in seconds into the file, like 12.5.":
        "У этой записи нет часов на экранной надписи: укажите время {which} в секундах от начала файла, "
        "например 12.5.",
    "The {which} time must be a number of seconds, like 12.5, or a clock time like 14:03:07 (got {value}).":
        "Время {which} — это число секунд, например 12.5, или время суток, например 14:03:07 (получено: {value}).",
    "The {which} time must be between 0 and {n} s, the length of this recording (got {value}).":
        "Время {which} должно быть от 0 до {n} с — длины этой записи (получено: {value}).",
    "The “Edits annotation #” field must be the number of an annotation of this item, like 12; leave it empty to "
    "add a new annotation.": "Поле «Правка разметки №» — это номер разметки этого файла, например 12; оставьте его "
                             "пустым, чтобы добавить новую разметку.",
    "Your role cannot annotate.": "Ваша роль не позволяет размечать записи.",
    "People must be a list of pseudonyms with roles.": "Люди указываются списком псевдонимов с ролями.",
    "Choose a label from the list.": "Выберите метку из списка.",
    "The end time is before the start time: swap them.": "Время конца раньше времени начала: поменяйте их местами.",
    "The note has {n} characters; at most 5000 fit: shorten it.":
        "В заметке {n} символов, а помещается не больше 5000: сократите её.",
    "A pseudonym has at most 64 characters.": "Псевдоним — не длиннее 64 символов.",
    "The role of {name} must be victim, perpetrator or witness.":
        "Роль человека {name} — victim (потерпевший), perpetrator (нарушитель) или witness (свидетель).",
    "There is no annotation #{n} on this item: check the number in “Edits annotation #”.":
        "У этого файла нет разметки №{n}: проверьте номер в поле «Правка разметки №».",
    "Annotation #{n} is {who}'s: only its author, an investigator or an admin may edit it; add yours as a new "
    "annotation instead.": "Разметку №{n} сделал(а) {who}: править её могут только автор, следователь или "
                           "администратор; добавьте свою как новую разметку.",
    "This annotation is already saved as #{n}: nothing was added.":
        "Эта разметка уже сохранена под №{n}: ничего не добавлено.",
    "Your role cannot record reviews.": "Ваша роль не позволяет записывать решения о просмотре.",
    "A review state is one of: {states}.": "Состояние просмотра — одно из: {states}.",
    "The note has more than 2000 characters: shorten it.": "В заметке больше 2000 символов: сократите её.",
    "This segment holds annotation #{n} ({label}, by {who}): it is not 'nothing of concern'. Press n to go on, or "
    "change the annotation first; an investigator may still decide otherwise.":
        "В этом фрагменте есть разметка №{n} ({label}, автор: {who}): это не «ничего тревожного». Нажмите n, "
        "чтобы идти дальше, или сначала измените разметку; следователь всё же может решить иначе.",
    "Nobody has reviewed this segment yet: there is nothing to confirm or dispute.":
        "Этот фрагмент ещё никто не просматривал: подтверждать или оспаривать нечего.",
    "A second review must come from someone else: you reviewed this segment yourself.":
        "Второй просмотр должен сделать другой человек: вы сами просматривали этот фрагмент.",
    "{who} gave this segment a second review ({state}): only an investigator or an admin may record another state "
    "over it now.": "{who} уже провёл(а) второй просмотр этого фрагмента ({state}): записать другое состояние "
                    "теперь могут только следователь или администратор.",
    "The language is one of: {langs}.": "Язык — один из: {langs}.",
    "the query has no words": "В запросе нет слов: введите хотя бы одно слово.",
    "Recorded: {state}.": "Записано: {state}.", "Already recorded: {state}.": "Уже записано: {state}.",
    "Saved as annotation #{n}.": "Сохранено как разметка №{n}.",
    # a request the app could not read into its parameters (web/validation.py)
    "A value of this request could not be read: correct it and send it again.":
        "Одно из значений запроса не удалось прочитать: исправьте его и отправьте снова.",
    "The request's body is not valid JSON: send a JSON object.":
        "Тело запроса — не JSON: отправьте объект JSON.",
    "The request's body must be a JSON object.": "Тело запроса должно быть объектом JSON.",
    "The request has no body: send a JSON object.": "В запросе нет тела: отправьте объект JSON.",
    "This form has no CSRF token: open the page again and send the form from it.":
        "В форме нет проверочного токена (CSRF): откройте страницу снова и отправьте форму с неё.",
    "The value of “{field}” is missing: fill it in and send it again.":
        "Не указано значение «{field}»: заполните его и отправьте снова.",
    "The value of “{field}” must be a number, like 0.5 (got {got}).":
        "Значение «{field}» должно быть числом, например 0.5 (получено: {got}).",
    "The value of “{field}” must be a whole number, like 3 (got {got}).":
        "Значение «{field}» должно быть целым числом, например 3 (получено: {got}).",
    "The value of “{field}” must be true or false (got {got}).":
        "Значение «{field}» должно быть true или false (получено: {got}).",
    "The value of “{field}” must be at least {n} (got {got}).":
        "Значение «{field}» должно быть не меньше {n} (получено: {got}).",
    "The value of “{field}” must be at most {n} (got {got}).":
        "Значение «{field}» должно быть не больше {n} (получено: {got}).",
    "The value of “{field}” must be more than {n} (got {got}).":
        "Значение «{field}» должно быть больше {n} (получено: {got}).",
    "The value of “{field}” must be less than {n} (got {got}).":
        "Значение «{field}» должно быть меньше {n} (получено: {got}).",
    "The value of “{field}” must be one of: {options} (got {got}).":
        "Значение «{field}» должно быть одним из: {options} (получено: {got}).",
    "The value of “{field}” is too long: at most {n} characters or items.":
        "Значение «{field}» слишком длинное: не больше {n} символов или элементов.",
    "The value of “{field}” must be a list (got {got}).": "Значение «{field}» должно быть списком (получено: {got}).",
    "The value of “{field}” must be text (got {got}).": "Значение «{field}» должно быть текстом (получено: {got}).",
    "The value of “{field}” cannot be used (got {got}): correct it and send it again.":
        "Значение «{field}» не подходит (получено: {got}): исправьте его и отправьте снова.",
    # the exposure meter (web/exposure.py)
    "The {limit} is a whole number of minutes from {low} to {high} (or empty for the case default): correct it "
    "and save again.": "{limit} — целое число минут от {low} до {high} (или пусто: тогда как задано для дела): "
                       "исправьте и сохраните снова.",
    "Only an admin may set the case's default limits: set your own limits instead.":
        "Лимиты дела по умолчанию задаёт только администратор: задайте свои собственные.",
    "You are not at your daily limit yet: there is nothing to continue past.":
        "Вы ещё не достигли дневного лимита: продолжать после него пока нечего.",
    # camera corrections (web/timeline_view.py, timeline/cameras.py)
    "Only an investigator or an admin can correct camera names.":
        "Исправлять названия камер могут только следователь или администратор.",
    "The new camera name is empty: type the name the camera has.":
        "Новое название камеры пустое: введите название, которое у камеры есть.",
    "The new camera name is longer than {n} characters: shorten it.":
        "Новое название камеры длиннее {n} символов: сократите его.",
    "The new camera name holds control characters: type it again as plain text.":
        "В новом названии камеры есть управляющие символы: введите его заново обычным текстом.",
    "No camera is shown or read as {camera} in this case: choose one from the timeline.":
        "В этом деле нет камеры, показанной или прочитанной как {camera}: выберите её на хронологии.",
    "The camera is already shown as {camera}: nothing to change.":
        "Камера уже показана как {camera}: менять нечего.",
    "{camera} is now part of camera {to} (signed into the case's ledger).":
        "{camera} теперь часть камеры {to} (подписано в журнале дела).",
    "Camera {camera} is now called {to} (signed into the case's ledger).":
        "Камера {camera} теперь называется {to} (подписано в журнале дела).",
    # why a segment is in the queue (triage/reasons.py)
    "movement strongly like a fight": "движение очень похоже на драку",
    "movement clearly like a fight": "движение явно похоже на драку",
    "movement somewhat like a fight": "движение немного похоже на драку",
    "sounds like {sound}": "по звуку похоже на {sound}",
    "a video network trained on human actions also sees a fight":
        "нейросеть, обученная на видео действий людей, тоже видит драку",
    "much louder than the rest of this recording": "намного громче остальной записи",
    "sudden movement across the whole picture": "резкое движение по всему кадру",
    "grainy picture: movement may be overstated": "зернистое изображение: движение может быть преувеличено",
    "a person on the floor for {n} s": "человек на полу {n} с", "a person on the floor": "человек на полу",
    "a fast strike or kick ({n} times)": "быстрый удар рукой или ногой (раз: {n})",
    "a fast strike or kick": "быстрый удар рукой или ногой",
    # what analyze.edits saw inside a file (the workspace's "Signs of editing")
    "the picture changes from {a} to {b} at {t} s (the keyframe before at {k} s): a file joined from two "
    "recordings, or re-encoded in part": "изображение меняется с {a} на {b} на {t} с (предыдущий опорный кадр — на "
                                         "{k} с): файл склеен из двух записей или частично перекодирован",
    "no frame between {a} s and {b} s: a hole of {d} s in the frame timestamps, where frames come every {u} s":
        "нет кадров между {a} с и {b} с: пропуск {d} с в метках времени кадров, хотя кадры идут каждые {u} с",
    "the frame timestamps go back from {a} s to {b} s: two recordings joined, or frames moved":
        "метки времени кадров идут назад с {a} с до {b} с: склеены две записи или кадры переставлены",
    "the burnt-in clock runs backwards from {t} s: it shows {c1} at {t1} s, {c2} at {t2} s and {c3} at {t3} s":
        "часы на кадре идут назад с {t} с: они показывают {c1} на {t1} с, {c2} на {t2} с и {c3} на {t3} с",
    "the burnt-in clock jumps from {c1} (at {t1} s) to {c2} (at {t2} s, the next frame read): {what}":
        "часы на кадре скачут с {c1} (на {t1} с) на {c2} (на {t2} с, следующий прочитанный кадр): {what}",
    "about {n} s of clock time are missing": "не хватает около {n} с времени",
    "the clock goes back about {n} s": "часы уходят назад примерно на {n} с",
    "the container says it was created at {a}, but the burnt-in clock starts at {b} ({d} apart): a whole number "
    "of hours ({h} h), perhaps a time zone": "по данным контейнера файл создан в {a}, а часы на кадре начинаются с "
                                             "{b} (разница {d}): целое число часов ({h} ч), возможно, часовой пояс",
    "the container says it was created at {a}, but the burnt-in clock starts at {b} ({d} apart)":
        "по данным контейнера файл создан в {a}, а часы на кадре начинаются с {b} (разница {d})",
}
# what a {name} of SENTENCES holds, when it is itself worded: None, a sentence or word of its own (looked up
# again); a dict, its few words. Any other name (numbers, names, labels, clock times) is kept as it is.
SLOTS: dict[str, dict[str, str] | None] = {
    "state": None, "what": None,
    "which": {"start": "начала", "end": "конца"},
    "limit": {"daily limit": "Дневной лимит", "break interval": "Интервал перерывов",
              "case's daily limit": "Дневной лимит дела", "case's break interval": "Интервал перерывов дела"},
    "sound": {"screaming": "крик", "shouting": "крики", "blows or impacts": "удары", "a bang or impact":
              "хлопок или удар", "crying": "плач"},
    "d": None,  # "3.5 min", "2.00 h", "1.5 days" (analyze.edits._span), below
}
SENTENCES.update({"{x} min": "{x} мин", "{x} h": "{x} ч", "{x} days": "{x} сут."})
# the timeline page's recordings by keyboard (templates/timeline.html; their names are in static/timeline.js)
RU.update({"Tab reaches each recording; Enter or Space opens it.":
           "Клавиша Tab переходит от записи к записи; Enter или пробел открывает запись."})
